"""``ast-deploy export``: a checkpoint to deployable artifacts with a manifest."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Optional

import typer

from .app import app, err_console, print_table
from .options import MultiValueCommand, with_load_options

TO_HELP = "Comma-separated formats or all-available."


def to_help() -> str:
    """``--to``'s help, listing :data:`ast_deploy.export.FORMATS` (which imports torch and every exporter)."""
    from ..export import FORMATS

    return f"Comma-separated formats or all-available: {','.join(FORMATS)}."


class _ExportCommand(MultiValueCommand):
    """Lists the export formats in ``--to``'s help when the help is shown, not when the CLI starts."""

    def format_help(self, ctx, formatter) -> None:
        for param in self.params:
            if param.name == "to":
                param.help = to_help()
        return super().format_help(ctx, formatter)


@app.command("export", cls=_ExportCommand)
@with_load_options
def export_cmd(
    checkpoint: Annotated[Path, typer.Argument(help="Checkpoint in any supported format.")],
    out: Annotated[Path, typer.Option("--out", "-o", help="Artifact directory to create.")],
    to: Annotated[
        str,
        typer.Option(help=TO_HELP),  # the formats are listed by _ExportCommand
    ] = "all-available",
    input_kind: Annotated[
        str, typer.Option("--input", help="waveform (front end in the graph) or fbank.")
    ] = "waveform",
    batch: Annotated[
        str, typer.Option(help="Batch range MIN:OPT:MAX (dynamic batch axis, TensorRT profile).")
    ] = "1:1:32",
    clip_seconds: Annotated[
        Optional[float],
        typer.Option(help="Samples per waveform input, in seconds (default: exactly the model's frames)."),
    ] = None,
    force: Annotated[bool, typer.Option("--force", help="Replace an existing --out.")] = False,
    verify: Annotated[bool, typer.Option("--verify/--no-verify", help="Check parity before publishing.")] = True,
    workspace_gib: Annotated[
        float, typer.Option(help="TensorRT builder workspace limit.", rich_help_panel="TensorRT")
    ] = 4.0,
    opt_level: Annotated[
        int, typer.Option(help="TensorRT builder optimisation level 0-5.", rich_help_panel="TensorRT")
    ] = 3,
    calibration: Annotated[
        Optional[list[Path]],
        typer.Option(
            "--calibration",
            help="Audio to calibrate static INT8 (openvino-int8) on: audio files, folders, quoted glob patterns or "
            "labelled manifests, several after one flag (default: 64 seeded synthetic signals).",
            rich_help_panel="Quantisation",
        ),
    ] = None,
    polygraphy_dir: Annotated[
        Optional[Path],
        typer.Option(
            "--polygraphy",
            help="Also write parity inputs, reference outputs and polygraphy commands (README.md) here, for TensorRT users.",
        ),
    ] = None,
    options=None,
) -> None:
    """Export a checkpoint to TorchScript, ONNX (fp32/fp16/int8), AOTInductor and TensorRT, with a manifest."""
    from ..export import ExportOptions, ParityFailure, export
    from ..inputs import expand_patterns
    from ..parity import table as parity_report_table
    from ..parity.handoff import check_options, handoff_after_export

    check_options(polygraphy_dir, None)

    export_options = ExportOptions(
        workspace_gib=workspace_gib,
        optimization_level=opt_level,
        calibration=tuple(Path(p) for p in expand_patterns(calibration or ())),
    )
    with err_console.status("exporting ...") as status:

        def log(message: str) -> None:
            status.update(message)
            if not message.endswith("..."):
                err_console.print(message, markup=False, highlight=False)

        def progress(name: str, done: int, total: int) -> None:
            status.update(f"checking parity: {name} {done}/{total} inputs ...")

        try:
            manifest = export(
                checkpoint,
                out,
                to=to,
                input_kind=input_kind,
                batch=batch,
                clip_seconds=clip_seconds,
                verify=verify,
                force=force,
                load_options=options,
                options=export_options,
                log=log,
                progress=progress,
            )
        except ParityFailure as e:
            if polygraphy_dir:  # for the artifacts that passed and were published
                log(handoff_after_export(out, polygraphy_dir))
            err_console.print(f"error: {e}", markup=False, highlight=False)
            raise typer.Exit(1) from None
        if polygraphy_dir:
            status.update("writing the polygraphy hand-off ...")
            log(handoff_after_export(out, polygraphy_dir))
    print_table(f"{out} ({manifest['input']['kind']} input)", parity_report_table(manifest["artifacts"]))
