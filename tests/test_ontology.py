"""The AudioSet ontology: the shipped file, parents of known labels, label mapping by id, roll-up."""

from __future__ import annotations

import hashlib
import json
from importlib import resources

import numpy as np
import pytest

from ast_deploy import InputError
from ast_deploy import ontology as onto
from ast_deploy.labels import builtin_label_set

ONTOLOGY_DIR = resources.files("ast_deploy") / "labels" / "ontology"
ONTOLOGY_SHA256 = "9c685f4403eecc3ca9be37fd7285cf212feaaea6ff7229d3e7ca89e0d1f2d15d"  # v1, commit d417d32


@pytest.fixture(scope="module")
def raw() -> list[dict]:
    """The ontology file as JSON, read here without ast_deploy.ontology."""
    return json.loads((ONTOLOGY_DIR / "ontology.json").read_text(encoding="utf-8"))


@pytest.fixture(scope="module")
def audioset():
    return builtin_label_set("audioset")


def test_the_shipped_file_is_the_ontology_with_its_licence_and_attribution() -> None:
    data = (ONTOLOGY_DIR / "ontology.json").read_bytes()
    assert hashlib.sha256(data).hexdigest() == ONTOLOGY_SHA256
    licence = (ONTOLOGY_DIR / "LICENSE").read_text(encoding="utf-8")
    assert licence.startswith("Attribution-ShareAlike 4.0 International")
    assert "Creative Commons Attribution-ShareAlike 4.0 International Public License" in " ".join(licence.split())
    readme = (ONTOLOGY_DIR / "README.md").read_text(encoding="utf-8")
    assert "CC BY-SA 4.0" in readme and "Google" in readme and ONTOLOGY_SHA256 in readme


def test_parents_equal_the_child_lists_of_the_file(raw) -> None:
    o = onto.load_ontology()
    assert len(o) == len(raw) == 632
    expected: dict[str, set[str]] = {e["id"]: set() for e in raw}
    for e in raw:
        for child in e["child_ids"]:
            expected[child].add(e["id"])
    assert {mid: set(p) for mid, p in o.parents.items()} == expected
    assert [o.name(m) for m in o.roots] == [
        "Human sounds",
        "Animal",
        "Music",
        "Natural sounds",
        "Sounds of things",
        "Source-ambiguous sounds",
        "Channel, environment and background",
    ]


@pytest.mark.parametrize(
    ("label", "parents", "ancestors"),
    [
        ("Bark", {"Dog"}, {"Dog", "Domestic animals, pets", "Animal"}),
        ("Male speech, man speaking", {"Speech"}, {"Speech", "Human voice", "Human sounds"}),
        ("Car", {"Motor vehicle (road)"}, {"Motor vehicle (road)", "Vehicle", "Sounds of things"}),
        ("Siren", {"Alarm"}, {"Alarm", "Sounds of things"}),
        ("Guitar", {"Plucked string instrument"}, {"Plucked string instrument", "Musical instrument", "Music"}),
        # Two parents: a DAG, not a tree.
        (
            "Choir",
            {"Singing", "Musical instrument"},
            {"Singing", "Human voice", "Human sounds", "Musical instrument", "Music"},
        ),
        ("Animal", set(), set()),
    ],
)
def test_parents_of_known_audioset_labels(audioset, label, parents, ancestors) -> None:
    o = onto.load_ontology()
    mid = audioset.mids[audioset.names.index(label)]  # by the label CSV's id
    assert {o.name(p) for p in o.parents[mid]} == parents
    assert onto.ancestors_by_name(label) == ancestors
    assert all(path[-1] == mid and not o.parents[path[0]] for path in o.paths(mid))


def test_every_audioset_label_maps_to_its_own_id(audioset) -> None:
    assert onto.label_mids(audioset.names) == audioset.mids  # by display name
    assert onto.label_mids(audioset.mids) == audioset.mids  # labels that are ids
    assert onto.label_mids(audioset.names, mids=audioset.mids) == audioset.mids


@pytest.mark.parametrize("name", ["esc50", "speechcommands"])
def test_label_sets_without_ontology_ids_are_refused_in_one_line(name) -> None:
    labels = builtin_label_set(name)
    with pytest.raises(InputError) as e:
        onto.rollup_for(labels.names, 0)
    message = str(e.value)
    assert "\n" not in message and "not ontology classes" in message and f"of {len(labels)} labels" in message
    with pytest.raises(InputError, match="not ontology classes"):  # their CSVs' made-up mids do not help
        onto.label_mids(labels.names, mids=labels.mids)


def test_names_must_match_exactly_for_labels_but_not_for_the_rollup_option() -> None:
    with pytest.raises(InputError):
        onto.label_mids(["dog"])  # ESC-50's "dog" is not the ontology's "Dog"
    assert onto.parse_rollup_spec("animal;MUSIC") == ["animal", "MUSIC"]
    assert onto.rollup_for(["Dog", "Guitar"], "animal;MUSIC").labels == ["Animal", "Music"]


def _subtree(raw: list[dict], name: str) -> set[str]:
    by_id = {e["id"]: e for e in raw}
    top = next(e["id"] for e in raw if e["name"] == name)
    out, stack = set(), [top]
    while stack:
        mid = stack.pop()
        if mid not in out:
            out.add(mid)
            stack.extend(by_id[mid]["child_ids"])
    return out


def test_rollup_is_the_max_over_itself_and_its_descendants(raw, audioset) -> None:
    rng = np.random.default_rng(0)
    scores = rng.random((3, len(audioset))).astype(np.float32)
    rollup = onto.rollup_for(audioset.names, "Animal,Music,Speech,Vehicle")
    assert rollup.labels == ["Animal", "Music", "Speech", "Vehicle"]
    got = rollup.apply(scores)
    for j, name in enumerate(rollup.labels):
        members = [i for i, mid in enumerate(audioset.mids) if mid in _subtree(raw, name)]
        assert got[:, j] == pytest.approx(scores[:, members].max(axis=1))
    # "Speech" is a label itself and a parent: its own score counts.
    one = np.zeros(len(audioset), np.float32)
    one[audioset.names.index("Speech")] = 0.7
    one[audioset.names.index("Bark")] = 0.9
    one[audioset.names.index("Car")] = 0.2
    assert onto.rollup_json(one, audioset.names, "Animal,Music,Speech,Vehicle") == [
        {"label": "Animal", "mid": "/m/0jbk", "score": pytest.approx(0.9)},
        {"label": "Speech", "mid": "/m/09x0r", "score": pytest.approx(0.7)},
        {"label": "Vehicle", "mid": "/m/07yv9", "score": pytest.approx(0.2)},
        {"label": "Music", "mid": "/m/04rlf", "score": 0.0},
    ]
    assert rollup.to_json(scores[1]) == sorted(rollup.to_json(scores[1]), key=lambda r: -r["score"])


def test_rollup_by_depth(audioset) -> None:
    top = onto.rollup_for(audioset.names, "0")
    assert len(top) == 7 and top.labels[0] == "Human sounds"
    level1 = onto.rollup_for(audioset.names, 1)
    o = onto.load_ontology()
    assert set(level1.mids) <= set(o.at_depth(1))
    assert {"Human voice", "Vehicle", "Domestic animals, pets", "Musical instrument"} <= set(level1.labels)
    assert "Speech" in onto.rollup_for(audioset.names, 2).labels  # Human sounds > Human voice > Speech
    # A parent with no label below it is left out: a model of two dog sounds has one depth-0 parent.
    assert onto.rollup_for(["Bark", "Howl"], 0).labels == ["Animal"]


def test_names_with_commas_and_bad_specs() -> None:
    assert onto.parse_rollup_spec("Channel, environment and background") == ["Channel, environment and background"]
    assert onto.parse_rollup_spec("Animal; Channel, environment and background") == [
        "Animal",
        "Channel, environment and background",
    ]
    assert onto.parse_rollup_spec("2") == 2
    with pytest.raises(InputError, match="did you mean 'Animal'"):
        onto.rollup_for(["Bark"], "Animl")
    with pytest.raises(InputError, match="none of the model's 1 labels"):
        onto.rollup_for(["Bark"], "Music")
    with pytest.raises(InputError, match="levels deep"):
        onto.rollup_for(["Bark"], 40)
    with pytest.raises(InputError, match="or parent class names"):
        onto.parse_rollup_spec(" ; ")


# --- --rollup in predict and stream ----------------------------------------------------------------


@pytest.fixture(scope="module")
def audioset_model(tmp_path_factory):
    """The streaming tests' micro model (its first label fires on a 1 kHz tone) with AudioSet labels."""
    from conftest import write_wav
    from test_streaming import tones, write_micro_model

    from ast_deploy import load_checkpoint, save_checkpoint

    root = tmp_path_factory.mktemp("rollup")
    ckpt = load_checkpoint(write_micro_model(root / "micro"))
    model = save_checkpoint(
        root / "model", ckpt.config, ckpt.state_dict, ["Beep, bleep", "Bark", "Guitar"], ckpt.frontend
    )
    return model, write_wav(root / "tone.wav", tones([(1.0, 2.0)], 3.0))


def test_predict_and_stream_report_parents(audioset_model) -> None:
    from conftest import run_cli

    model, audio = audioset_model
    result = run_cli(
        "predict", model, audio, "--hop", "0.5", "--json", "-k", "3", "--rollup", "Animal;Source-ambiguous sounds"
    )
    assert result.code == 0, result.stderr
    (got,) = result.json()["results"]
    by_label = {t["label"]: t["score"] for t in got["top"]}  # mean over windows, all 3 labels
    assert {r["label"]: r["score"] for r in got["rollup"]} == pytest.approx(
        {"Animal": by_label["Bark"], "Source-ambiguous sounds": by_label["Beep, bleep"]}
    )
    assert {r["mid"] for r in got["rollup"]} == {"/m/0jbk", "/t/dd00098"}
    for window in got["windows"]:
        scores = {t["label"]: t["score"] for t in window["top"]}
        assert {r["label"]: r["score"] for r in window["rollup"]} == pytest.approx(
            {"Animal": scores["Bark"], "Source-ambiguous sounds": scores["Beep, bleep"]}
        )
    table = run_cli("predict", model, audio, "--rollup", "0")
    assert table.code == 0 and "AudioSet parents" in table.stdout and "Music" in table.stdout
    lines = run_cli("stream", model, audio, "--hop", "0.5", "--rollup", "0")
    assert lines.code == 0, lines.stderr
    windows = [w for w in map(json.loads, lines.stdout.splitlines()) if w["type"] == "window"]
    assert windows and all(
        {r["label"] for r in w["rollup"]} == {"Animal", "Music", "Source-ambiguous sounds"} for w in windows
    )


def test_rollup_with_events_gives_the_events_of_parents(audioset_model, tmp_path) -> None:
    """--rollup --events: events of the rolled-up parent scores, in predict (--json and JSON lines)
    and stream alike; "Source-ambiguous sounds" has one label below it ("Beep, bleep", which fires on
    the tone), so its events are that label's, renamed; --thresholds rows name parents."""
    from conftest import assert_input_error, run_cli

    model, audio = audioset_model
    spec = "Animal;Source-ambiguous sounds"
    plain = run_cli("predict", model, audio, "--hop", "0.25", "--json", "--events")
    assert plain.code == 0, plain.stderr
    (label_events,) = (r["events"] for r in plain.json()["results"])
    beep = [e for e in label_events if e["label"] == "Beep, bleep"]
    assert len(beep) == 1 and beep[0]["onset"] == pytest.approx(1.0, abs=0.25)

    result = run_cli("predict", model, audio, "--hop", "0.25", "--json", "--events", "--rollup", spec)
    assert result.code == 0, result.stderr
    (got,) = result.json()["results"]
    parents = [r["label"] for r in got["rollup"]]
    assert {e["label"] for e in got["events"]} <= set(parents)
    ambiguous = [e for e in got["events"] if e["label"] == "Source-ambiguous sounds"]
    same = {k: beep[0][k] for k in ("onset", "offset", "peak")}
    assert ambiguous == [{"label": "Source-ambiguous sounds", "mid": "/t/dd00098", "index": 1, **same}]
    animal = [e for e in got["events"] if e["label"] == "Animal"]
    assert [(e["onset"], e["offset"]) for e in animal] == [
        (e["onset"], e["offset"]) for e in label_events if e["label"] == "Bark"
    ]
    assert all(e["mid"] == "/m/0jbk" and e["index"] == 0 for e in animal)

    lines = run_cli("predict", model, audio, "--hop", "0.25", "--events", "--rollup", spec)
    assert lines.code == 0, lines.stderr
    assert [json.loads(line) for line in lines.stdout.splitlines()] == [
        {"source": got["source"], **e} for e in got["events"]
    ]
    streamed = run_cli("stream", model, audio, "--hop", "0.25", "--events", "--rollup", spec)
    assert streamed.code == 0, streamed.stderr
    events = [{k: v for k, v in e.items() if k != "type"} for e in map(json.loads, streamed.stdout.splitlines())]
    events = [e for e in events if "onset" in e]
    key = ("label", "mid", "index", "onset", "offset")
    assert sorted(tuple(e[k] for k in key) for e in events) == sorted(tuple(e[k] for k in key) for e in got["events"])

    csv = tmp_path / "parents.csv"
    csv.write_text("label,on,off\nSource-ambiguous sounds,1.01,1.01\n")
    quiet = run_cli("predict", model, audio, "--hop", "0.25", "--json", "--rollup", spec, "--thresholds", csv)
    assert quiet.code == 0, quiet.stderr
    assert [e for e in quiet.json()["results"][0]["events"] if e["label"] == "Source-ambiguous sounds"] == []
    csv.write_text('"Beep, bleep",0.5\n')  # a label, not a parent
    assert_input_error(
        run_cli("predict", model, audio, "--rollup", spec, "--thresholds", csv), "unknown label 'Beep, bleep'"
    )


def test_evaluate_events_of_parents(audioset_model, tmp_path) -> None:
    """evaluate-events --rollup scores the parents' events against a reference of parent classes,
    and gives what evaluating predict --rollup --events --json gives."""
    from conftest import assert_input_error, run_cli

    model, audio = audioset_model
    ref = tmp_path / "parents.tsv"
    ref.write_text(f"filename\tonset\toffset\tevent_label\n{audio.name}\t1.0\t2.0\tSource-ambiguous sounds\n")
    flags = ("--hop", "0.25", "--rollup", "Animal;Source-ambiguous sounds")
    args = ("--reference", ref, "--audio-dir", audio.parent, "--no-psds", "--json", "--no-progress")
    result = run_cli("evaluate-events", model, audio, *flags, *args)
    assert result.code == 0, result.stderr
    got = result.json()
    counts = got["sed_eval"]["event_based"]["class_wise"]["Source-ambiguous sounds"]["count"]
    assert (counts["Nref"], counts["Nsys"]) == (1, 1)
    assert got["sed_eval"]["event_based"]["overall"]["f_measure"]["f_measure"] == 1.0
    events = tmp_path / "parents.json"
    predicted = run_cli("predict", model, audio, *flags, "--events", "--json")
    assert predicted.code == 0, predicted.stderr
    events.write_text(predicted.stdout)
    again = run_cli("evaluate-events", events, *args[:-1])
    assert again.code == 0, again.stderr
    # Classes: those of the events and the reference ("Animal" has neither), where a model knows all its own.
    mine, other = got["sed_eval"], again.json()["sed_eval"]
    assert other["event_based"]["overall"] == mine["event_based"]["overall"]
    for kind in ("event_based", "segment_based"):
        name = "Source-ambiguous sounds"
        assert other[kind]["class_wise"][name] == mine[kind]["class_wise"][name]
    assert_input_error(run_cli("evaluate-events", events, *args[:4], "--rollup", "0"), "--rollup apply to a model")


def test_rollup_of_own_labels_is_one_line_exit_2(audioset_model) -> None:
    from conftest import SPEECH_WAV, TINY_CASE, TINY_PTH, assert_input_error, authors_flags, run_cli

    args = [TINY_PTH, *authors_flags(TINY_CASE), SPEECH_WAV, "--rollup", "0"]
    assert_input_error(run_cli("predict", *args), "not ontology classes", "'class_0'")
    assert_input_error(run_cli("stream", *args), "not ontology classes")
    model, audio = audioset_model
    assert_input_error(run_cli("predict", model, audio, "--rollup", "Animl"), "did you mean 'Animal'")
