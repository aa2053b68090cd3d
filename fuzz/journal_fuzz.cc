// libFuzzer target: the frame journal's parser (storage/frame_journal.h, FORMAT.md "Frame journal"),
// which reads the files a previous run left behind at every store Open. The input is one journal
// file's bytes. Checks: the parse stays inside the input and accounts for it (records, damaged
// ones, tail); each record handed out is a valid frame value under a valid key; and the records
// handed out, re-encoded back to back, parse to the same records with nothing damaged or left over.
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "base/check.h"
#include "storage/frame_journal.h"
#include "storage/record_codec.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace kd::storage;  // NOLINT(google-build-using-namespace): a fuzz target's body
  const std::string_view bytes(reinterpret_cast<const char*>(data), size);
  std::vector<std::pair<std::string, std::string>> records;
  const JournalParse parse = ParseJournal(bytes, [&](std::string_view key, std::string_view value) {
    ParsedKey parsed;
    KD_CHECK(ParseSampleKey(key, &parsed));
    KD_CHECK(DecodeFrameValue(key, value, nullptr).ok());
    records.emplace_back(key, value);
  });
  KD_CHECK(parse.records == records.size());
  KD_CHECK(parse.tail_bytes <= size);
  KD_CHECK((parse.damaged_records == 0 && parse.tail_bytes == 0) == parse.first_problem.empty());
  std::string again;
  size_t record_bytes = 0;
  for (const auto& [key, value] : records) {
    again += EncodeJournalHeader(static_cast<uint32_t>(key.size()), static_cast<uint32_t>(value.size()));
    again += key;
    again += value;
    record_bytes += kJournalHeaderBytes + key.size() + value.size();
  }
  KD_CHECK(record_bytes + parse.tail_bytes <= size);
  size_t i = 0;
  const JournalParse reparse = ParseJournal(again, [&](std::string_view key, std::string_view value) {
    KD_CHECK(i < records.size() && key == records[i].first && value == records[i].second);
    ++i;
  });
  KD_CHECK(i == records.size() && reparse.damaged_records == 0 && reparse.tail_bytes == 0);
  return 0;
}
