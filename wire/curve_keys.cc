#include "wire/curve_keys.h"

#include <cerrno>
#include <cstring>
#include <fcntl.h>
#include <string>
#include <unistd.h>
#include <vector>
#include <zmq.h>

#include <sys/stat.h>

namespace kd::wire {
namespace {

constexpr size_t kZ85KeyChars = 40;
constexpr size_t kKeyFileMaxBytes = 64 * 1024;  // a key file is ~200 bytes; anything larger is not one
constexpr std::string_view kFileHeader = "# kd CURVE key file v1 (Z85, ZeroMQ RFC 32)\n";

std::string Errno(std::string_view what, const std::string& path) {
  return std::string(what) + " " + path + ": " + std::strerror(errno);
}

// The public key of a Z85 secret key, or "" when the secret is not valid.
std::string PublicOf(const std::string& secret) {
  if (!IsValidZ85Key(secret)) return "";
  char pub[kZ85KeyChars + 1] = {};
  if (zmq_curve_public(pub, secret.c_str()) != 0) return "";
  return std::string(pub, kZ85KeyChars);
}

Status WriteAtomically(const std::string& path, const std::string& text, mode_t mode) {
  const std::string tmp = path + ".tmp";
  ::unlink(tmp.c_str());  // a leftover of an interrupted write
  const int fd = ::open(tmp.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, mode);
  if (fd < 0) return Status::IOError(Errno("cannot create", tmp));
  // open() applies the umask; fchmod makes the mode exact (0644 must stay readable for the public file).
  bool ok = ::fchmod(fd, mode) == 0;
  size_t done = 0;
  while (ok && done < text.size()) {
    const ssize_t n = ::write(fd, text.data() + done, text.size() - done);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) {
      ok = false;
      break;
    }
    done += static_cast<size_t>(n);
  }
  ok = ok && ::fsync(fd) == 0;
  const std::string error = ok ? "" : Errno("cannot write", tmp);
  ::close(fd);
  if (!ok) {
    ::unlink(tmp.c_str());
    return Status::IOError(error);
  }
  if (::rename(tmp.c_str(), path.c_str()) != 0) {
    const std::string e = Errno("cannot rename to", path);
    ::unlink(tmp.c_str());
    return Status::IOError(e);
  }
  const size_t slash = path.rfind('/');
  const std::string dir = slash == std::string::npos ? "." : (slash == 0 ? "/" : path.substr(0, slash));
  const int dfd = ::open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (dfd >= 0) {  // best effort: the rename itself is already atomic
    ::fsync(dfd);
    ::close(dfd);
  }
  return Status::Ok();
}

struct ParsedKeyFile {
  std::string public_key, secret_key;
};

Result<ParsedKeyFile> ReadKeyFile(const std::string& path, bool require_private) {
  const int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) {
    if (errno == ENOENT) return Status::NotFound(Errno("no key file", path));
    return Status::IOError(Errno("cannot open", path));
  }
  struct stat st {};
  if (::fstat(fd, &st) != 0) {
    const std::string e = Errno("cannot stat", path);
    ::close(fd);
    return Status::IOError(e);
  }
  if (require_private && (st.st_mode & 077) != 0) {
    ::close(fd);
    return Status::PermissionDenied("secret key file " + path + " is accessible by group or others (chmod 600 it)");
  }
  std::string text;
  char buf[4096];
  while (true) {
    const ssize_t n = ::read(fd, buf, sizeof(buf));
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) {
      const std::string e = Errno("cannot read", path);
      ::close(fd);
      return Status::IOError(e);
    }
    if (n == 0) break;
    text.append(buf, static_cast<size_t>(n));
    if (text.size() > kKeyFileMaxBytes) {
      ::close(fd);
      return Status::Corruption(path + " is too large to be a key file");
    }
  }
  ::close(fd);

  ParsedKeyFile parsed;
  size_t pos = 0;
  int line_no = 0;
  while (pos < text.size()) {
    size_t end = text.find('\n', pos);
    if (end == std::string::npos) end = text.size();
    std::string line = text.substr(pos, end - pos);
    pos = end + 1;
    ++line_no;
    while (!line.empty() && (line.back() == '\r' || line.back() == ' ' || line.back() == '\t')) line.pop_back();
    size_t start = line.find_first_not_of(" \t");
    if (start == std::string::npos || line[start] == '#') continue;
    line = line.substr(start);
    const size_t eq = line.find('=');
    const std::string where = path + ":" + std::to_string(line_no);
    if (eq == std::string::npos) return Status::Corruption(where + ": expected key = value");
    std::string name = line.substr(0, eq);
    std::string value = line.substr(eq + 1);
    while (!name.empty() && (name.back() == ' ' || name.back() == '\t')) name.pop_back();
    start = value.find_first_not_of(" \t");
    value = start == std::string::npos ? "" : value.substr(start);
    if (value.size() >= 2 && value.front() == '"' && value.back() == '"') value = value.substr(1, value.size() - 2);
    std::string* slot = nullptr;
    if (name == "public-key") {
      slot = &parsed.public_key;
    } else if (name == "secret-key") {
      slot = &parsed.secret_key;
    } else {
      return Status::Corruption(where + ": unknown entry '" + name + "'");
    }
    if (!slot->empty()) return Status::Corruption(where + ": duplicate " + name);
    if (!IsValidZ85Key(value)) return Status::Corruption(where + ": " + name + " is not a 40-character Z85 key");
    *slot = value;
  }
  return parsed;
}

}  // namespace

bool IsValidZ85Key(std::string_view key) {
  if (key.size() != kZ85KeyChars) return false;
  const std::string copy(key);
  uint8_t bytes[32];
  return zmq_z85_decode(bytes, copy.c_str()) != nullptr;
}

Result<CurveKeyPair> GenerateCurveKeyPair() {
  char pub[kZ85KeyChars + 1] = {};
  char sec[kZ85KeyChars + 1] = {};
  if (zmq_curve_keypair(pub, sec) != 0) {
    return Status::Unimplemented(std::string("zmq_curve_keypair: ") + zmq_strerror(zmq_errno()));
  }
  return CurveKeyPair{std::string(pub, kZ85KeyChars), std::string(sec, kZ85KeyChars)};
}

Status WriteCurveKeyPair(const std::string& secret_path, const std::string& public_path, const CurveKeyPair& keys) {
  if (!IsValidZ85Key(keys.public_key) || !IsValidZ85Key(keys.secret_key)) {
    return Status::InvalidArgument("not a valid Z85 CURVE key pair");
  }
  if (PublicOf(keys.secret_key) != keys.public_key) {
    return Status::InvalidArgument("public key does not belong to the secret key");
  }
  const std::string pub_line = "public-key = \"" + keys.public_key + "\"\n";
  if (!secret_path.empty()) {
    const std::string text = std::string(kFileHeader) + "# SECRET: whoever reads this file can act as its owner.\n" +
                             pub_line + "secret-key = \"" + keys.secret_key + "\"\n";
    KD_RETURN_IF_ERROR(WriteAtomically(secret_path, text, 0600));
  }
  if (!public_path.empty()) {
    KD_RETURN_IF_ERROR(WriteAtomically(public_path, std::string(kFileHeader) + pub_line, 0644));
  }
  return Status::Ok();
}

Result<CurveKeyPair> ReadCurveKeyPair(const std::string& secret_path) {
  KD_ASSIGN_OR_RETURN(ParsedKeyFile parsed, ReadKeyFile(secret_path, /*require_private=*/true));
  if (parsed.secret_key.empty()) return Status::Corruption(secret_path + " has no secret-key (a public key file?)");
  const std::string derived = PublicOf(parsed.secret_key);
  if (derived.empty()) return Status::Corruption(secret_path + ": bad secret-key");
  if (!parsed.public_key.empty() && parsed.public_key != derived) {
    return Status::Corruption(secret_path + ": public-key does not belong to secret-key");
  }
  return CurveKeyPair{derived, parsed.secret_key};
}

Result<std::string> ReadCurvePublicKey(const std::string& path) {
  KD_ASSIGN_OR_RETURN(ParsedKeyFile parsed, ReadKeyFile(path, /*require_private=*/false));
  if (!parsed.public_key.empty()) {
    if (!parsed.secret_key.empty() && PublicOf(parsed.secret_key) != parsed.public_key) {
      return Status::Corruption(path + ": public-key does not belong to secret-key");
    }
    return parsed.public_key;
  }
  if (!parsed.secret_key.empty()) {
    std::string derived = PublicOf(parsed.secret_key);
    if (derived.empty()) return Status::Corruption(path + ": bad secret-key");
    return derived;
  }
  return Status::Corruption(path + " holds no key");
}

}  // namespace kd::wire
