#include "base/host_port.h"

#include <charconv>

namespace kd {

Status ParseHostPort(const std::string& address, std::string* host, int* port) {
  const size_t colon = address.rfind(':');
  if (colon == std::string::npos || colon == 0 || colon + 1 == address.size()) {
    return Status::InvalidArgument("'" + address + "' is not host:port");
  }
  std::string h = address.substr(0, colon);
  if (h.front() == '[') {
    if (h.back() != ']' || h.size() < 3) return Status::InvalidArgument("'" + address + "': a bad [IPv6] host");
    h = h.substr(1, h.size() - 2);
  } else if (h.find(':') != std::string::npos) {
    return Status::InvalidArgument("'" + address + "': write an IPv6 host as [address]:port");
  }
  int p = -1;
  const char* first = address.data() + colon + 1;
  const char* last = address.data() + address.size();
  auto [end, ec] = std::from_chars(first, last, p);
  if (ec != std::errc() || end != last || p < 0 || p > 65535) {
    return Status::InvalidArgument("'" + address + "': the port must be 0..65535");
  }
  *host = h;
  *port = p;
  return Status::Ok();
}

bool IsLoopbackHost(const std::string& host) {
  return host == "localhost" || host == "::1" || host.rfind("127.", 0) == 0;
}

}  // namespace kd
