#include "config/toml_reader.h"

#include <algorithm>
#include <cctype>
#include <charconv>
#include <cmath>
#include <cstdio>
#include <fstream>
#include <sstream>

#include "base/device_id.h"
#include "base/text.h"

namespace kd::config::internal {
namespace {

namespace fs = std::filesystem;

bool IsLogLevel(std::string_view s) {
  return s == "trace" || s == "debug" || s == "info" || s == "warn" || s == "error";
}

// True when `s` is well-formed UTF-8 (no overlong forms, surrogates or code points past U+10FFFF),
// as TOML requires of a whole document.
bool IsValidUtf8(std::string_view s) {
  for (size_t i = 0; i < s.size();) {
    const auto c = static_cast<unsigned char>(s[i]);
    size_t n = 0;
    uint32_t cp = 0;
    if (c < 0x80) {
      ++i;
      continue;
    } else if (c >= 0xC2 && c <= 0xDF) {
      n = 1, cp = c & 0x1Fu;
    } else if (c >= 0xE0 && c <= 0xEF) {
      n = 2, cp = c & 0x0Fu;
    } else if (c >= 0xF0 && c <= 0xF4) {
      n = 3, cp = c & 0x07u;
    } else {
      return false;
    }
    if (s.size() - i - 1 < n) return false;
    for (size_t k = 1; k <= n; ++k) {
      const auto cc = static_cast<unsigned char>(s[i + k]);
      if ((cc & 0xC0u) != 0x80u) return false;
      cp = (cp << 6) | (cc & 0x3Fu);
    }
    if ((n == 2 && (cp < 0x800 || (cp >= 0xD800 && cp <= 0xDFFF))) || (n == 3 && (cp < 0x10000 || cp > 0x10FFFF)))
      return false;
    i += n + 1;
  }
  return true;
}

std::string Trim(std::string_view s) {
  size_t b = 0, e = s.size();
  while (b < e && std::isspace(static_cast<unsigned char>(s[b]))) ++b;
  while (e > b && std::isspace(static_cast<unsigned char>(s[e - 1]))) --e;
  return std::string(s.substr(b, e - b));
}

// Sets root[path] = node, creating tables on the way; inline tables are merged key by key so that
// each leaf is recorded as overridden (and the file's other keys in that section stay).
Status SetLeaf(toml::table& root, const std::vector<std::string>& path, toml::node&& node, const Override& ov,
               Sources* src) {
  toml::table* t = &root;
  std::string key_path;
  for (size_t i = 0; i + 1 < path.size(); ++i) {
    key_path += (i ? "." : "") + path[i];
    toml::node* n = t->get(path[i]);
    if (!n) n = &t->insert_or_assign(path[i], toml::table{}).first->second;
    if (!(t = n->as_table()))
      return Status::InvalidArgument("override '" + ov.text + "': " + key_path + " is " + TypeName(*n) +
                                     ", not a table (set a whole array of tables as name=[{...}, ...])");
  }
  key_path += (path.size() > 1 ? "." : "") + path.back();
  if (toml::table* inline_table = node.as_table()) {
    for (auto&& [k, v] : *inline_table) {
      std::vector<std::string> sub = path;
      sub.emplace_back(k.str());
      Override leaf{ov.text, "", false};
      KD_RETURN_IF_ERROR(SetLeaf(root, sub, std::move(v), leaf, src));
    }
    return Status::Ok();
  }
  std::move(node).visit([&](auto&& concrete) { t->insert_or_assign(path.back(), std::move(concrete)); });
  src->overrides[key_path] = ov;
  return Status::Ok();
}

Status ApplyOverride(const std::string& text, toml::table& root, Sources* src) {
  // A config file is UTF-8 (the TOML parser refuses anything else); so is an override, whose bare
  // strings would otherwise reach the options, and ToToml's output, unchecked.
  if (!IsValidUtf8(text)) return Status::InvalidArgument("override '" + PrintableBytes(text) + "': not valid UTF-8");
  const size_t eq = text.find('=');
  const std::string key = eq == std::string::npos ? "" : Trim(std::string_view(text).substr(0, eq));
  if (key.empty())
    return Status::InvalidArgument("override '" + text + "': expected section.key=value (e.g. uplink.kbps=500)");
  std::vector<std::string> path;
  for (size_t b = 0;;) {
    const size_t dot = key.find('.', b);
    path.push_back(key.substr(b, dot == std::string::npos ? std::string::npos : dot - b));
    if (path.back().empty()) return Status::InvalidArgument("override '" + text + "': empty key in '" + key + "'");
    if (dot == std::string::npos) break;
    b = dot + 1;
  }
  const std::string raw = Trim(std::string_view(text).substr(eq + 1));
  // A TOML value if it parses as exactly one; otherwise a bare string.
  toml::table parsed;
  bool is_toml = false;
  try {
    parsed = toml::parse("v = " + raw);
    is_toml = parsed.size() == 1 && parsed.get("v") != nullptr;
  } catch (const toml::parse_error&) {
  }
  toml::node* value = is_toml ? parsed.get("v") : nullptr;
  if (value) return SetLeaf(root, path, std::move(*value), Override{text, raw, true}, src);
  toml::value<std::string> bare(raw);
  return SetLeaf(root, path, std::move(bare), Override{text, raw, true}, src);
}

std::string Quote(std::string_view s) {
  std::string out = "\"";
  for (char ch : s) {
    const auto c = static_cast<unsigned char>(ch);
    switch (ch) {
      case '"':
        out += "\\\"";
        break;
      case '\\':
        out += "\\\\";
        break;
      case '\n':
        out += "\\n";
        break;
      case '\t':
        out += "\\t";
        break;
      case '\r':
        out += "\\r";
        break;
      default:
        if (c < 0x20 || c == 0x7f) {
          char buf[8];
          std::snprintf(buf, sizeof(buf), "\\u%04x", c);
          out += buf;
        } else {
          out += ch;
        }
    }
  }
  return out + "\"";
}

}  // namespace

// Shortest round-trip decimal form of a double ("2000", "0.001", "1e+20").
std::string ShortestDouble(double v) {
  if (v == std::trunc(v) && std::abs(v) < 1e15) return std::to_string(static_cast<int64_t>(v));  // 1000000
  char buf[64];
  auto [end, ec] = std::to_chars(buf, buf + sizeof(buf), v);
  return ec == std::errc() ? std::string(buf, end) : std::to_string(v);
}

const char* TypeName(const toml::node& n) {
  switch (n.type()) {
    case toml::node_type::string:
      return "a string";
    case toml::node_type::integer:
      return "an integer";
    case toml::node_type::floating_point:
      return "a float";
    case toml::node_type::boolean:
      return "a boolean";
    case toml::node_type::array:
      return "an array";
    case toml::node_type::table:
      return "a table";
    default:
      return "a date/time";
  }
}

// ---------------------------------------------------------------------------------------------
// Paths
// ---------------------------------------------------------------------------------------------

std::string ResolvePath(const std::string& v, PathKind kind, const fs::path& base) {
  if (v.empty()) return v;
  switch (kind) {
    case PathKind::kNone:
      return v;
    case PathKind::kFile:
      break;
    case PathKind::kUri:
      if (v.find("://") != std::string::npos || v.rfind("v4l2:", 0) == 0) return v;
      break;
    case PathKind::kOutput:
      if (v == "-") return v;
      break;
    case PathKind::kEndpoint: {
      constexpr std::string_view kIpc = "ipc://";
      if (v.rfind(kIpc, 0) != 0) return v;
      const std::string rest = v.substr(kIpc.size());
      // "@name" is Linux's abstract namespace, not a file.
      if (rest.empty() || rest[0] == '@' || rest[0] == '/') return v;
      return std::string(kIpc) + (base / rest).lexically_normal().string();
    }
  }
  const fs::path p(v);
  if (p.is_absolute()) return v;
  return (base / p).lexically_normal().string();
}

// ---------------------------------------------------------------------------------------------
// Where values came from: the file or an override. Error messages and relative-path bases
// depend on it.

// ---------------------------------------------------------------------------------------------
// Sources and the document
// ---------------------------------------------------------------------------------------------

const Override* Sources::Find(const std::string& key) const {
  for (const auto& [k, o] : overrides) {
    if (key == k) return &o;
    if (key.size() > k.size() && key.compare(0, k.size(), k) == 0 && (key[k.size()] == '.' || key[k.size()] == '['))
      return &o;
  }
  return nullptr;
}

std::string Sources::Origin(const std::string& key) const {
  if (const Override* o = Find(key)) return "override '" + o->text + "'";
  return file.empty() ? std::string("(no config file)") : file;
}

Status Sources::Error(const std::string& key, const std::string& problem) const {
  return Status::InvalidArgument(Origin(key) + ": " + key + ": " + problem);
}

Result<toml::table> ParseDocument(std::optional<std::string_view> text, const std::string& path,
                                  const std::vector<std::string>& overrides, Sources* src) {
  std::error_code ec;
  src->cwd = fs::current_path(ec);
  src->file_dir = src->cwd;
  toml::table root;
  if (text.has_value()) {
    src->file = path;
    src->file_dir = (src->cwd / fs::path(path)).lexically_normal().parent_path();
    try {
      root = toml::parse(*text, path);
    } catch (const toml::parse_error& e) {
      std::ostringstream msg;
      msg << path << ":" << e.source().begin.line << ":" << e.source().begin.column
          << ": TOML parse error: " << e.description();
      return Status::InvalidArgument(msg.str());
    }
  }
  for (const std::string& o : overrides) KD_RETURN_IF_ERROR(ApplyOverride(o, root, src));
  return root;
}

Result<std::string> ReadConfigFile(const std::string& path) {
  std::ifstream f(path);
  if (!f) return Status::NotFound("cannot open config '" + path + "'");
  std::stringstream ss;
  ss << f.rdbuf();
  return ss.str();
}

// ---------------------------------------------------------------------------------------------
// Reader
// ---------------------------------------------------------------------------------------------

Status Reader::GetString(const std::string& path, const toml::node& n, std::string* out) const {
  if (auto v = n.value_exact<std::string>()) {
    *out = *v;
    return Status::Ok();
  }
  // An override value that parsed as another TOML type is taken verbatim (device_id=123).
  if (auto it = src_.overrides.find(path); it != src_.overrides.end() && it->second.has_raw) {
    *out = it->second.raw;
    return Status::Ok();
  }
  return WrongType(path, n, "a string");
}

Status Reader::GetStrings(const std::string& path, const toml::node& n, std::vector<std::string>* out) const {
  const toml::array* arr = n.as_array();
  if (!arr) return WrongType(path, n, "an array of strings");
  std::vector<std::string> values;
  for (size_t i = 0; i < arr->size(); ++i) {
    auto s = (*arr)[i].value_exact<std::string>();
    if (!s) return WrongType(path + "[" + std::to_string(i) + "]", (*arr)[i], "a string");
    values.push_back(*s);
  }
  *out = std::move(values);
  return Status::Ok();
}

Status Reader::GetPath(const char* key, std::string* out, PathKind kind) {
  const bool present = table_ && table_->get(key);
  KD_RETURN_IF_ERROR(Get(key, out));
  if (present) {
    const std::string path = prefix_ + key;
    *out = ResolvePath(*out, kind, src_.BaseFor(path));
  }
  return Status::Ok();
}

Status Reader::GetPaths(const char* key, std::vector<std::string>* out) {
  const bool present = table_ && table_->get(key);
  KD_RETURN_IF_ERROR(Get(key, out));
  if (present) {
    const fs::path& base = src_.BaseFor(prefix_ + key);
    for (auto& p : *out) p = ResolvePath(p, PathKind::kFile, base);
  }
  return Status::Ok();
}

Status Reader::Section(const char* key, const toml::table** out) {
  known_.insert(key);
  *out = nullptr;
  const toml::node* n = table_ ? table_->get(key) : nullptr;
  if (!n) return Status::Ok();
  if (!(*out = n->as_table())) return WrongType(prefix_ + key, *n, "a table ([" + prefix_ + key + "])");
  return Status::Ok();
}

Status Reader::TableArray(const char* key, const toml::array** out) {
  known_.insert(key);
  *out = nullptr;
  const toml::node* n = table_ ? table_->get(key) : nullptr;
  if (!n) return Status::Ok();
  const toml::array* arr = n->as_array();
  if (!arr) return WrongType(prefix_ + key, *n, std::string("an array of tables ([[") + key + "]])");
  for (size_t i = 0; i < arr->size(); ++i) {
    if (!(*arr)[i].is_table()) return WrongType(prefix_ + key + "[" + std::to_string(i) + "]", (*arr)[i], "a table");
  }
  *out = arr;
  return Status::Ok();
}

Status Reader::CheckUnknown() const {
  if (!table_) return Status::Ok();
  for (const auto& [k, _] : *table_) {
    const std::string key(k.str());
    if (!known_.contains(key)) return src_.Error(prefix_ + key, "unknown key");
  }
  return Status::Ok();
}

Status Reader::WrongType(const std::string& path, const toml::node& n, const std::string& expected) const {
  return src_.Error(path, std::string("wrong type: expected ") + expected + ", got " + TypeName(n));
}

// ---------------------------------------------------------------------------------------------
// Checker
// ---------------------------------------------------------------------------------------------

void Checker::Fail(const std::string& key, const std::string& problem) {
  if (failed_) return;
  failed_ = true;
  key_ = key;
  problem_ = problem;
}

void Checker::MultipleOf32(const std::string& key, int64_t v, int64_t lo, int64_t hi) {
  if (!(v >= lo && v <= hi && v % 32 == 0))
    Fail(key, "out of range: " + Num(v) + " is not a multiple of 32 in [" + Num(lo) + ", " + Num(hi) + "]");
}

void Checker::Required(const std::string& key, const std::string& v) {
  if (v.empty()) Fail(key, "missing required key");
}

void Checker::Id(const std::string& key, const std::string& v) {
  if (!IsValidDeviceId(v)) Fail(key, "invalid id \"" + v + "\": " + kDeviceIdRule);
}

void Checker::Endpoint(const std::string& key, const std::string& v) {
  if (v.find("://") == std::string::npos || v.size() <= v.find("://") + 3)
    Fail(key, "\"" + v + "\" is not a ZeroMQ endpoint (tcp://host:port, ipc://path, inproc://name)");
}

void Checker::LogLevel(const std::string& key, const std::string& v) {
  if (!IsLogLevel(v)) Fail(key, "\"" + v + "\" is not one of trace, debug, info, warn, error");
}

Status Checker::ToStatus() const { return failed_ ? Status::InvalidArgument(key_ + ": " + problem_) : Status::Ok(); }

// ---------------------------------------------------------------------------------------------
// TomlWriter
// ---------------------------------------------------------------------------------------------

void TomlWriter::Section(std::string_view header) {
  if (!out_.empty()) out_ += '\n';
  out_ += header;
  out_ += '\n';
}

void TomlWriter::Str(std::string_view key, std::string_view v) { Line(key, Quote(v)); }

void TomlWriter::Bool(std::string_view key, bool v) { Line(key, v ? "true" : "false"); }

void TomlWriter::Double(std::string_view key, double v) {
  std::string s = ShortestDouble(v);
  if (s.find_first_of(".eni") == std::string::npos) s += ".0";  // keep it a TOML float
  Line(key, s);
}

void TomlWriter::Strs(std::string_view key, const std::vector<std::string>& v) {
  std::string s = "[";
  for (size_t i = 0; i < v.size(); ++i) s += (i ? ", " : "") + Quote(v[i]);
  Line(key, s + "]");
}

void TomlWriter::Comment(std::string_view text) { out_ += "# " + std::string(text) + "\n"; }

void TomlWriter::Line(std::string_view key, const std::string& value) {
  out_ += std::string(key) + " = " + value + "\n";
}

}  // namespace kd::config::internal
