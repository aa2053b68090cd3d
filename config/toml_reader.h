// Private to kd_config: the generic TOML machinery behind the daemons' options (daemon_options.cc).
// It knows nothing of any option: where a value came from (Sources: the file or a "section.key=value"
// override), reading typed keys of one table while recording the known ones (Reader), collecting the
// first failed rule (Checker), applying overrides to a parsed document, and writing TOML back
// (TomlWriter). option_table.h drives it from one table of keys per section.
//
// Error messages are "<origin>: <key.path>: <problem>", origin being the file, "override '<text>'" or
// "(no config file)": every error names the key and where its value came from.
//
// This header includes toml++; only kd_config's sources (and its unit tests) include it.
#ifndef KD_CONFIG_TOML_READER_H_
#define KD_CONFIG_TOML_READER_H_

#include <cstdint>
#include <filesystem>
#include <limits>
#include <map>
#include <optional>
#include <set>
#include <string>
#include <string_view>
#include <type_traits>
#include <utility>
#include <vector>

#include <toml++/toml.h>

#include "base/status.h"

namespace kd::config::internal {

// Shortest round-trip decimal form of a double ("2000", "0.001", "1e+20").
std::string ShortestDouble(double v);

// A number as error messages and TOML show it.
template <typename T>
std::string Num(T v) {
  if constexpr (std::is_floating_point_v<T>) {
    return ShortestDouble(v);
  } else {
    return std::to_string(v);
  }
}

// "a string", "an integer", ... for wrong-type messages.
const char* TypeName(const toml::node& n);

// Unsigned options must fit a TOML integer (signed 64-bit) so that what ToToml writes loads back.
inline constexpr uint64_t kMaxTomlInt = static_cast<uint64_t>(std::numeric_limits<int64_t>::max());

// How a string key is resolved when its value is relative: against the file's directory for values
// from the file, against the CWD for values from overrides.
enum class PathKind {
  kNone,      // not a path: kept as written
  kFile,      // a plain path ("" stays "")
  kUri,       // source.uri: URLs ("x://") and "v4l2:N" stay as they are
  kOutput,    // output.detections: "-" (stdout) and "" (off) stay as they are
  kEndpoint,  // ZeroMQ endpoint: only the path of ipc:// is resolved
};
std::string ResolvePath(const std::string& v, PathKind kind, const std::filesystem::path& base);

// ---------------------------------------------------------------------------------------------
// Where values came from: the file or an override. Error messages and relative-path bases
// depend on it.
// ---------------------------------------------------------------------------------------------

struct Override {
  std::string text;  // the override as given ("uplink.kbps=500")
  std::string raw;   // its value text, used verbatim by string keys (absent for inline tables)
  bool has_raw = false;
};

class Sources {
 public:
  std::string file;                           // "" = no file
  std::filesystem::path file_dir;             // base of relative paths from the file
  std::filesystem::path cwd;                  // base of relative paths from overrides
  std::map<std::string, Override> overrides;  // by key path ("uplink.kbps", "groups")

  // The override that set `key` (exactly, or a whole array containing it), or null.
  const Override* Find(const std::string& key) const;
  // The file, "override '...'" or "(no config file)".
  std::string Origin(const std::string& key) const;
  // InvalidArgument "<origin>: <key>: <problem>".
  Status Error(const std::string& key, const std::string& problem) const;
  const std::filesystem::path& BaseFor(const std::string& key) const { return Find(key) ? cwd : file_dir; }
};

// The document of a config file: `text` is the content of `path` (nullopt = no file, defaults
// only), `overrides` ("section.key=value") are applied in order. *src says where each value came
// from. InvalidArgument naming the file (line:column) or the override on a syntax error.
Result<toml::table> ParseDocument(std::optional<std::string_view> text, const std::string& path,
                                  const std::vector<std::string>& overrides, Sources* src);

// The content of the file at `path`; NotFound "cannot open config '<path>'".
Result<std::string> ReadConfigFile(const std::string& path);

// ---------------------------------------------------------------------------------------------
// Reading a table into a struct. Every key read is recorded; the rest are unknown-key errors.
// ---------------------------------------------------------------------------------------------

class Reader {
 public:
  // `table` may be null (the section is absent: every Get keeps the default). `prefix` is the key
  // path of the table with a trailing dot ("uplink.", "groups[0].", "" for the root).
  Reader(const toml::table* table, std::string prefix, const Sources& src)
      : table_(table), prefix_(std::move(prefix)), src_(src) {}

  // Reads `key` into *out when present (absent keeps *out). T is bool, an integer type (the value
  // must fit it), double (a TOML integer is accepted), std::string or std::vector<std::string>.
  template <typename T>
  Status Get(const char* key, T* out);

  // A string (or strings) holding a path, resolved against the file's directory or the CWD.
  Status GetPath(const char* key, std::string* out, PathKind kind = PathKind::kFile);
  Status GetPaths(const char* key, std::vector<std::string>* out);

  // A sub-table ([section]); *out = null when absent.
  Status Section(const char* key, const toml::table** out);
  // An array of tables ([[key]]); *out = null when absent.
  Status TableArray(const char* key, const toml::array** out);

  // An error naming the first key of the table that no Get/Section/TableArray asked for.
  Status CheckUnknown() const;

 private:
  Status WrongType(const std::string& path, const toml::node& n, const std::string& expected) const;
  Status GetString(const std::string& path, const toml::node& n, std::string* out) const;
  Status GetStrings(const std::string& path, const toml::node& n, std::vector<std::string>* out) const;

  const toml::table* table_;
  std::string prefix_;
  const Sources& src_;
  std::set<std::string> known_;
};

template <typename T>
Status Reader::Get(const char* key, T* out) {
  known_.insert(key);
  const toml::node* n = table_ ? table_->get(key) : nullptr;
  if (!n) return Status::Ok();
  const std::string path = prefix_ + key;
  if constexpr (std::is_same_v<T, bool>) {
    if (auto v = n->value_exact<bool>()) {
      *out = *v;
      return Status::Ok();
    }
    return WrongType(path, *n, "a boolean");
  } else if constexpr (std::is_integral_v<T>) {
    auto v = n->value_exact<int64_t>();
    if (!v) return WrongType(path, *n, "an integer");
    using Limits = std::numeric_limits<T>;
    const bool fits = std::is_signed_v<T>
                          ? (*v >= static_cast<int64_t>(Limits::min()) && *v <= static_cast<int64_t>(Limits::max()))
                          : (*v >= 0 && static_cast<uint64_t>(*v) <= Limits::max());
    if (!fits)
      return src_.Error(
          path, "out of range: " + Num(*v) + " is not in [" + Num(Limits::min()) + ", " + Num(Limits::max()) + "]");
    *out = static_cast<T>(*v);
    return Status::Ok();
  } else if constexpr (std::is_floating_point_v<T>) {
    if (auto v = n->value<double>(); v && (n->is_floating_point() || n->is_integer())) {
      *out = *v;
      return Status::Ok();
    }
    return WrongType(path, *n, "a number");
  } else if constexpr (std::is_same_v<T, std::string>) {
    return GetString(path, *n, out);
  } else {
    static_assert(std::is_same_v<T, std::vector<std::string>>);
    return GetStrings(path, *n, out);
  }
}

// ---------------------------------------------------------------------------------------------
// Validation: the first failing rule, as (key path, problem).
// ---------------------------------------------------------------------------------------------

class Checker {
 public:
  bool failed() const { return failed_; }
  const std::string& key() const { return key_; }
  const std::string& problem() const { return problem_; }

  // Records the problem unless an earlier one was: the first failure is the one reported.
  void Fail(const std::string& key, const std::string& problem);
  void Require(bool ok, const std::string& key, const std::string& problem) {
    if (!ok) Fail(key, problem);
  }
  template <typename T>
  void Range(const std::string& key, T v, T lo, T hi) {
    if (!(v >= lo && v <= hi)) Fail(key, "out of range: " + Num(v) + " is not in [" + Num(lo) + ", " + Num(hi) + "]");
  }
  template <typename T>
  void AtLeast(const std::string& key, T v, T lo) {
    if (!(v >= lo)) Fail(key, "out of range: " + Num(v) + " must be >= " + Num(lo));
  }
  void MultipleOf32(const std::string& key, int64_t v, int64_t lo, int64_t hi);
  void Required(const std::string& key, const std::string& v);
  void Id(const std::string& key, const std::string& v);
  void Endpoint(const std::string& key, const std::string& v);
  void LogLevel(const std::string& key, const std::string& v);
  // InvalidArgument "key: problem" (no origin: for options edited in code).
  Status ToStatus() const;

 private:
  bool failed_ = false;
  std::string key_, problem_;
};

// ---------------------------------------------------------------------------------------------
// Writing TOML
// ---------------------------------------------------------------------------------------------

class TomlWriter {
 public:
  // A "[section]" or "[[array]]" header, after a blank line unless it is the first line.
  void Section(std::string_view header);
  void Str(std::string_view key, std::string_view v);
  void Bool(std::string_view key, bool v);
  template <typename T>
  void Int(std::string_view key, T v) {
    Line(key, std::to_string(v));
  }
  // Always with a '.', an exponent, inf or nan: the value must load back as a TOML float.
  void Double(std::string_view key, double v);
  void Strs(std::string_view key, const std::vector<std::string>& v);
  void Comment(std::string_view text);
  std::string Take() { return std::move(out_); }

 private:
  void Line(std::string_view key, const std::string& value);
  std::string out_;
};

}  // namespace kd::config::internal

#endif  // KD_CONFIG_TOML_READER_H_
