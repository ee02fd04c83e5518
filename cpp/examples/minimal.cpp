// The smallest program that embeds the classifier: top 5 labels of one WAV file.
//
//   ast_minimal ARTIFACT_DIR FILE.wav
#include <cstdio>

#include "ast/classifier.h"

int main(int argc, char** argv) {
  if (argc != 3) {
    std::fprintf(stderr, "usage: %s ARTIFACT_DIR FILE.wav\n", argv[0]);
    return 2;
  }
  try {
    ast::Classifier clf(argv[1], "torchscript");         // reads manifest.json, checks sha256, loads model.ts
    const ast::Audio audio = ast::read_wav(argv[2]);      // mono float32 at the file's rate
    for (const ast::Score& s : clf.classify(audio, 5))   // windows, batches, sigmoid/softmax, mean over windows
      std::printf("%-30s %.4f (max %.4f)\n", s.label.c_str(), s.score, s.max);
  } catch (const ast::Error& e) {                         // bad manifest, hash, WAV, rate, ...
    std::fprintf(stderr, "error: %s\n", e.what());
    return 2;
  }
  return 0;
}
