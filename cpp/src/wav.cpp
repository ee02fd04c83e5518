// RIFF/WAVE reader: PCM 8/16/24/32-bit and IEEE float 32/64-bit, plain or WAVE_FORMAT_EXTENSIBLE.
// Conversions match libsndfile's (what `soundfile.read(dtype="float32")` returns on the Python
// side), so both runtimes see the same float samples: integer x -> float(x) / 2^(bits-1),
// unsigned 8-bit centred on 128, float copied. Channels are averaged as numpy's mean does.
#include <cmath>
#include <cstdint>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <string>
#include <vector>

#include "ast/classifier.h"

namespace ast {
namespace {

constexpr std::uint16_t kFormatPcm = 1;
constexpr std::uint16_t kFormatFloat = 3;
constexpr std::uint16_t kFormatExtensible = 0xFFFE;

std::uint16_t u16(const unsigned char* p) { return static_cast<std::uint16_t>(p[0] | p[1] << 8); }
std::uint32_t u32(const unsigned char* p) {
  return std::uint32_t(p[0]) | std::uint32_t(p[1]) << 8 | std::uint32_t(p[2]) << 16 | std::uint32_t(p[3]) << 24;
}

// One sample of the given container width at p -> float, as libsndfile converts it.
float sample(const unsigned char* p, std::uint16_t format, int bytes) {
  if (format == kFormatFloat) {
    if (bytes == 4) {
      float f;
      const std::uint32_t bits = u32(p);
      std::memcpy(&f, &bits, 4);
      return f;
    }
    double d;
    const std::uint64_t bits = std::uint64_t(u32(p)) | std::uint64_t(u32(p + 4)) << 32;
    std::memcpy(&d, &bits, 8);
    return static_cast<float>(d);
  }
  switch (bytes) {
    case 1:
      return static_cast<float>(int(p[0]) - 128) * (1.0f / 128.0f);
    case 2:
      return static_cast<float>(static_cast<std::int16_t>(u16(p))) * (1.0f / 32768.0f);
    case 3: {  // left-justify into 32 bits so the sign lands in bit 31
      const auto v = static_cast<std::int32_t>(std::uint32_t(p[0]) << 8 | std::uint32_t(p[1]) << 16 | std::uint32_t(p[2]) << 24);
      return static_cast<float>(v) * (1.0f / 2147483648.0f);
    }
    default:
      return static_cast<float>(static_cast<std::int32_t>(u32(p))) * (1.0f / 2147483648.0f);
  }
}

}  // namespace

Audio read_wav(const std::string& path) {
  namespace fs = std::filesystem;
  if (!fs::exists(path)) throw AudioError(path + ": no such file");
  if (fs::is_directory(path)) throw AudioError(path + ": is a directory, not a WAV file");
  std::ifstream in(path, std::ios::binary);
  if (!in) throw AudioError(path + ": cannot open");
  const std::vector<unsigned char> buf((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  if (in.bad()) throw AudioError(path + ": read error");

  const auto fail = [&](const std::string& what) -> AudioError { return AudioError(path + ": " + what); };
  if (buf.empty()) throw fail("empty file, not a WAV file");
  if (buf.size() < 12 || std::memcmp(buf.data() + 8, "WAVE", 4) != 0 ||
      (std::memcmp(buf.data(), "RIFF", 4) != 0 && std::memcmp(buf.data(), "RIFX", 4) != 0 &&
       std::memcmp(buf.data(), "RF64", 4) != 0))
    throw fail("not a WAV file (no RIFF/WAVE header)");
  if (std::memcmp(buf.data(), "RIFF", 4) != 0)
    throw fail(std::string(reinterpret_cast<const char*>(buf.data()), 4) + " WAV files are not supported (only little-endian RIFF)");

  std::uint16_t format = 0, channels = 0, block_align = 0, bits = 0;
  std::uint32_t rate = 0;
  bool have_fmt = false;
  const unsigned char* data = nullptr;
  std::size_t data_size = 0;
  std::size_t pos = 12;
  while (data == nullptr) {
    if (pos + 8 > buf.size()) {
      throw fail(have_fmt ? "truncated or corrupt WAV: no data chunk" : "truncated or corrupt WAV: no fmt chunk");
    }
    const unsigned char* id = buf.data() + pos;
    const std::size_t size = u32(buf.data() + pos + 4);
    const std::size_t body = pos + 8;
    if (std::memcmp(id, "fmt ", 4) == 0) {
      if (size < 16 || body + size > buf.size()) throw fail("truncated or corrupt WAV: bad fmt chunk");
      const unsigned char* f = buf.data() + body;
      format = u16(f);
      channels = u16(f + 2);
      rate = u32(f + 4);
      block_align = u16(f + 12);
      bits = u16(f + 14);
      if (format == kFormatExtensible) {
        // cbSize (2), valid bits (2), channel mask (4), then the sub-format GUID whose first two
        // bytes are the format code.
        if (size < 40) throw fail("truncated or corrupt WAV: short WAVE_FORMAT_EXTENSIBLE fmt chunk");
        format = u16(f + 24);
      }
      have_fmt = true;
    } else if (std::memcmp(id, "data", 4) == 0) {
      if (!have_fmt) throw fail("corrupt WAV: data chunk before the fmt chunk");
      if (body + size > buf.size()) {
        throw fail("truncated WAV: the data chunk declares " + std::to_string(size) + " bytes but the file holds " +
                   std::to_string(buf.size() - body));
      }
      data = buf.data() + body;
      data_size = size;
    }
    pos = body + size + (size & 1);  // chunks are padded to an even size
  }

  if (channels == 0) throw fail("corrupt WAV: 0 channels");
  if (rate == 0) throw fail("corrupt WAV: sample rate 0");
  const bool pcm = format == kFormatPcm && (bits == 8 || bits == 16 || bits == 24 || bits == 32);
  const bool flt = format == kFormatFloat && (bits == 32 || bits == 64);
  if (!pcm && !flt) {
    throw fail("unsupported WAV encoding (format code " + std::to_string(format) + ", " + std::to_string(bits) +
               " bits); supported: PCM 8/16/24/32-bit and IEEE float 32/64-bit");
  }
  const int bytes = bits / 8;
  if (block_align != channels * bytes) {
    throw fail("corrupt WAV: block align " + std::to_string(block_align) + " for " + std::to_string(channels) +
               " channels of " + std::to_string(bits) + " bits");
  }
  if (data_size % block_align != 0) throw fail("corrupt WAV: the data chunk is not a whole number of frames");
  const std::size_t frames = data_size / block_align;
  if (frames == 0) throw fail("WAV file has no samples (0 frames)");

  Audio audio;
  audio.sample_rate = static_cast<int>(rate);
  audio.channels = channels;
  audio.source = path;
  audio.samples.resize(frames);
  for (std::size_t i = 0; i < frames; ++i) {
    const unsigned char* frame = data + i * block_align;
    float sum = 0;
    for (int c = 0; c < channels; ++c) sum += sample(frame + c * bytes, format, bytes);
    audio.samples[i] = channels == 1 ? sum : sum / static_cast<float>(channels);
  }
  return audio;
}

}  // namespace ast
