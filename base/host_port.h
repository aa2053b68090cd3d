// "host:port" addresses of the management HTTP servers ([http] listen in both daemons): one rule
// for the config checker and the server that binds it.
#ifndef KD_BASE_HOST_PORT_H_
#define KD_BASE_HOST_PORT_H_

#include <string>

#include "base/status.h"

namespace kd {

// Splits "host:port" (an IPv4 address, a name, or "[v6]"); port 0..65535 (0 = any free port).
// Errors: InvalidArgument naming what is wrong.
Status ParseHostPort(const std::string& address, std::string* host, int* port);

// True for 127.0.0.0/8, ::1 and localhost: where an unauthenticated endpoint may bind by default.
bool IsLoopbackHost(const std::string& host);

}  // namespace kd

#endif  // KD_BASE_HOST_PORT_H_
