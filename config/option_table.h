// Private to kd_config: one table of keys per options section drives reading the TOML, checking the
// values and writing the effective TOML, so that a key is listed once (its name, the member it
// fills, its limit and whether it is a path) instead of once per direction.
//
// A document (EdgeOptions, LearnerOptions) is described by one function template that names its
// sections in file order and hands each, with its table, to a visitor:
//
//   template <typename O, typename V>  // O = Options or const Options
//   Status VisitEdge(O& o, V& v) {
//     KD_RETURN_IF_ERROR(v.Root(o, kEdgeRootKeys));
//     KD_RETURN_IF_ERROR(v.Section("source", o.source, kSourceKeys));
//     ...
//     return v.Finish();
//   }
//
// The visitors here read (ReadVisitor), check (CheckVisitor) and write (WriteVisitor). Errors come
// from toml_reader.h, unchanged: every one names the key path.
#ifndef KD_CONFIG_OPTION_TABLE_H_
#define KD_CONFIG_OPTION_TABLE_H_

#include <cstddef>
#include <cstdint>
#include <functional>
#include <string>
#include <type_traits>
#include <variant>
#include <vector>

#include "base/check.h"
#include "base/status.h"
#include "config/toml_reader.h"

namespace kd::config::internal {

// What a value must satisfy beyond fitting its C++ type. Rules that involve other keys, or have
// their own message, are Key::rule.
struct Limit {
  enum class Kind {
    kNone,
    kRange,         // lo <= v <= hi ("out of range: v is not in [lo, hi]")
    kAtLeast,       // v >= lo
    kMultipleOf32,  // lo <= v <= hi and v % 32 == 0
    kRequired,      // a non-empty string
    kId,            // a device id (1..64 of [A-Za-z0-9._-])
    kOptionalId,    // "" or a device id
    kEndpoint,      // a ZeroMQ endpoint "scheme://address"
    kLogLevel,      // trace, debug, info, warn, error
  };
  Kind kind = Kind::kNone;
  bool floating = false;  // the bounds are dlo/dhi (a double key), else ilo/ihi (an integer key)
  int64_t ilo = 0, ihi = 0;
  double dlo = 0, dhi = 0;
};

template <typename T>
constexpr Limit InRange(T lo, T hi) {
  if constexpr (std::is_floating_point_v<T>) {
    return {.kind = Limit::Kind::kRange, .floating = true, .dlo = lo, .dhi = hi};
  } else {
    return {.kind = Limit::Kind::kRange, .ilo = static_cast<int64_t>(lo), .ihi = static_cast<int64_t>(hi)};
  }
}
constexpr Limit AtLeast(int64_t lo) { return {.kind = Limit::Kind::kAtLeast, .ilo = lo}; }
constexpr Limit MultipleOf32(int64_t lo, int64_t hi) {
  return {.kind = Limit::Kind::kMultipleOf32, .ilo = lo, .ihi = hi};
}
constexpr Limit Is(Limit::Kind kind) { return {.kind = kind}; }
inline constexpr Limit kNoLimit{};

// The member a key fills, by type: what a key can hold.
template <typename S>
using Member = std::variant<bool S::*, int S::*, int64_t S::*, uint64_t S::*, double S::*, std::string S::*,
                            std::vector<std::string> S::*>;

// One key of a section S.
template <typename S>
struct Key {
  const char* name;  // the TOML key within its section
  Member<S> member;
  Limit limit = {};
  PathKind path = PathKind::kNone;  // strings and arrays of strings: how a relative value is resolved
  // Checked after `limit`, in table order: rules that involve other keys of the section or need
  // their own message. `prefix` is the section's key path with a trailing dot ("learner.").
  void (*rule)(const S& s, const std::string& prefix, Checker& c) = nullptr;
};

// ---------------------------------------------------------------------------------------------
// One section's keys
// ---------------------------------------------------------------------------------------------

template <typename S, size_t N>
Status ReadKeys(Reader& r, const Key<S> (&keys)[N], S* s) {
  for (const Key<S>& k : keys) {
    KD_RETURN_IF_ERROR(std::visit(
        [&](auto member) -> Status {
          auto* field = &(s->*member);
          using T = std::remove_pointer_t<decltype(field)>;
          if constexpr (std::is_same_v<T, std::string>) {
            if (k.path != PathKind::kNone) return r.GetPath(k.name, field, k.path);
          } else if constexpr (std::is_same_v<T, std::vector<std::string>>) {
            if (k.path != PathKind::kNone) {
              KD_CHECK_MSG(k.path == PathKind::kFile, k.name);  // arrays hold plain paths only
              return r.GetPaths(k.name, field);
            }
          }
          return r.Get(k.name, field);
        },
        k.member));
  }
  return Status::Ok();
}

// Applies `limit` to the value `v` of `key`. A limit that does not fit the value's type is a bug in
// a table, caught by the first check of that key (config_test checks every key).
template <typename T>
void ApplyLimit(const Limit& limit, const std::string& key, const T& v, Checker& c) {
  using K = Limit::Kind;
  if (limit.kind == K::kNone) return;
  if constexpr (std::is_arithmetic_v<T> && !std::is_same_v<T, bool>) {
    if constexpr (std::is_floating_point_v<T>) {
      KD_CHECK_MSG(limit.kind == K::kRange && limit.floating, key);
      c.Range<T>(key, v, static_cast<T>(limit.dlo), static_cast<T>(limit.dhi));
    } else {
      KD_CHECK_MSG(!limit.floating, key);
      if (limit.kind == K::kRange) {
        c.Range<T>(key, v, static_cast<T>(limit.ilo), static_cast<T>(limit.ihi));
      } else if (limit.kind == K::kAtLeast) {
        c.AtLeast<T>(key, v, static_cast<T>(limit.ilo));
      } else {
        KD_CHECK_MSG(limit.kind == K::kMultipleOf32, key);
        c.MultipleOf32(key, static_cast<int64_t>(v), limit.ilo, limit.ihi);
      }
    }
  } else if constexpr (std::is_same_v<T, std::string>) {
    switch (limit.kind) {
      case K::kRequired:
        return c.Required(key, v);
      case K::kId:
        return c.Id(key, v);
      case K::kOptionalId:
        if (!v.empty()) c.Id(key, v);
        return;
      case K::kEndpoint:
        return c.Endpoint(key, v);
      case K::kLogLevel:
        return c.LogLevel(key, v);
      default:
        KD_CHECK_MSG(false, key);
    }
  } else {
    KD_CHECK_MSG(false, key);  // booleans and arrays take rules, not limits
  }
}

template <typename S, size_t N>
void CheckKeys(const S& s, const std::string& prefix, const Key<S> (&keys)[N], Checker& c) {
  for (const Key<S>& k : keys) {
    std::visit([&](auto member) { ApplyLimit(k.limit, prefix + k.name, s.*member, c); }, k.member);
    if (k.rule) k.rule(s, prefix, c);
  }
}

template <typename S, size_t N>
void WriteKeys(TomlWriter& w, const S& s, const Key<S> (&keys)[N]) {
  for (const Key<S>& k : keys) {
    std::visit(
        [&](auto member) {
          const auto& v = s.*member;
          using T = std::remove_cvref_t<decltype(v)>;
          if constexpr (std::is_same_v<T, bool>) {
            w.Bool(k.name, v);
          } else if constexpr (std::is_integral_v<T>) {
            w.Int(k.name, v);
          } else if constexpr (std::is_floating_point_v<T>) {
            w.Double(k.name, v);
          } else if constexpr (std::is_same_v<T, std::string>) {
            w.Str(k.name, v);
          } else {
            w.Strs(k.name, v);
          }
        },
        k.member);
  }
}

// ---------------------------------------------------------------------------------------------
// Visitors of a document. Root: keys of the top-level table; Section: a [name] table; Array: a
// [[name]] array of tables, with a rule over the whole options (cross-element rules such as
// duplicates, in the order they are reported); Finish: after the last section.
// ---------------------------------------------------------------------------------------------

// Reads the parsed document; an unknown key in a section or at the top level is an error.
class ReadVisitor {
 public:
  ReadVisitor(const toml::table& root, const Sources& src) : src_(src), root_(&root, "", src) {}

  template <typename S, size_t N>
  Status Root(S& s, const Key<S> (&keys)[N]) {
    return ReadKeys(root_, keys, &s);
  }
  template <typename S, size_t N>
  Status Section(const char* name, S& s, const Key<S> (&keys)[N]) {
    const toml::table* t = nullptr;
    KD_RETURN_IF_ERROR(root_.Section(name, &t));
    Reader r(t, std::string(name) + ".", src_);
    KD_RETURN_IF_ERROR(ReadKeys(r, keys, &s));
    return r.CheckUnknown();
  }
  // A present array replaces the default elements.
  template <typename E, size_t N, typename Rule>
  Status Array(const char* name, std::vector<E>& elements, const Key<E> (&keys)[N], Rule /*checked elsewhere*/) {
    const toml::array* arr = nullptr;
    KD_RETURN_IF_ERROR(root_.TableArray(name, &arr));
    if (!arr) return Status::Ok();
    elements.clear();
    for (size_t i = 0; i < arr->size(); ++i) {
      Reader r((*arr)[i].as_table(), std::string(name) + "[" + std::to_string(i) + "].", src_);
      E e;
      KD_RETURN_IF_ERROR(ReadKeys(r, keys, &e));
      KD_RETURN_IF_ERROR(r.CheckUnknown());
      elements.push_back(std::move(e));
    }
    return Status::Ok();
  }
  Status Finish() { return root_.CheckUnknown(); }

 private:
  const Sources& src_;
  Reader root_;
};

// Checks every key's limit and rule in table order; the first failure is kept in the Checker.
template <typename Options>
class CheckVisitor {
 public:
  CheckVisitor(const Options& whole, Checker& c) : whole_(whole), c_(c) {}

  template <typename S, size_t N>
  Status Root(const S& s, const Key<S> (&keys)[N]) {
    CheckKeys(s, "", keys, c_);
    return Status::Ok();
  }
  template <typename S, size_t N>
  Status Section(const char* name, const S& s, const Key<S> (&keys)[N]) {
    CheckKeys(s, std::string(name) + ".", keys, c_);
    return Status::Ok();
  }
  template <typename E, size_t N>
  Status Array(const char* name, const std::vector<E>& elements, const Key<E> (&keys)[N],
               void (*rule)(const Options&, Checker&)) {
    for (size_t i = 0; i < elements.size(); ++i)
      CheckKeys(elements[i], std::string(name) + "[" + std::to_string(i) + "].", keys, c_);
    if (rule) rule(whole_, c_);
    return Status::Ok();
  }
  Status Finish() { return Status::Ok(); }

 private:
  const Options& whole_;
  Checker& c_;
};

// Writes every key. Arrays of tables come after all the [sections], as the effective config has
// always been printed (a later [section] after a [[array]] entry would read as part of it to a
// human eye, though not to TOML).
class WriteVisitor {
 public:
  explicit WriteVisitor(TomlWriter& w) : w_(w) {}

  template <typename S, size_t N>
  Status Root(const S& s, const Key<S> (&keys)[N]) {
    WriteKeys(w_, s, keys);
    return Status::Ok();
  }
  template <typename S, size_t N>
  Status Section(const char* name, const S& s, const Key<S> (&keys)[N]) {
    w_.Section("[" + std::string(name) + "]");
    WriteKeys(w_, s, keys);
    return Status::Ok();
  }
  template <typename E, size_t N, typename Rule>
  Status Array(const char* name, const std::vector<E>& elements, const Key<E> (&keys)[N], Rule) {
    arrays_.push_back([this, name, &elements, &keys] {
      for (const E& e : elements) {
        w_.Section("[[" + std::string(name) + "]]");
        WriteKeys(w_, e, keys);
      }
    });
    return Status::Ok();
  }
  Status Finish() {
    for (const auto& write : arrays_) write();
    arrays_.clear();
    return Status::Ok();
  }

 private:
  TomlWriter& w_;
  std::vector<std::function<void()>> arrays_;
};

// What a table says of one key, for tests that must cover every key (a key added to a table is
// then tested without editing the test).
struct KeyInfo {
  enum class Type { kBool, kInt, kInt64, kUint64, kDouble, kString, kStrings };  // Member's order
  std::string section;                                                           // "" = the top level
  std::string name;
  bool in_array = false;  // a key of each [[section]] element
  Type type = Type::kBool;
  Limit limit;
  PathKind path = PathKind::kNone;
};

// Lists the keys of a document in table order.
class ListVisitor {
 public:
  template <typename S, size_t N>
  Status Root(const S&, const Key<S> (&keys)[N]) {
    return Add("", false, keys);
  }
  template <typename S, size_t N>
  Status Section(const char* name, const S&, const Key<S> (&keys)[N]) {
    return Add(name, false, keys);
  }
  template <typename E, size_t N, typename Rule>
  Status Array(const char* name, const std::vector<E>&, const Key<E> (&keys)[N], Rule) {
    return Add(name, true, keys);
  }
  Status Finish() { return Status::Ok(); }
  std::vector<KeyInfo> Take() { return std::move(keys_); }

 private:
  template <typename S, size_t N>
  Status Add(const char* section, bool in_array, const Key<S> (&keys)[N]) {
    for (const Key<S>& k : keys)
      keys_.push_back({section, k.name, in_array, static_cast<KeyInfo::Type>(k.member.index()), k.limit, k.path});
    return Status::Ok();
  }
  std::vector<KeyInfo> keys_;
};

}  // namespace kd::config::internal

#endif  // KD_CONFIG_OPTION_TABLE_H_
