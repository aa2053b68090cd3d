// kdctl: operator commands for a kd deployment.
//   keygen curve|signing   make a CURVE key pair (device or learner) or an ed25519 model-signing key
//   enroll / revoke        allow or refuse a device's CURVE key on a running learner
//   status                 devices, versions, rates and rollouts of a running learner
//   rollout start|rollback start rolling out a group's latest version, or return it to the previous one
//   report                 results.csv and PNG plots of every group's training rounds (kdctl/report.h)
// Commands that talk to kdlearnd use its admin socket (ipc://<store>/admin.sock by default): access
// is controlled by the socket file's permissions, so run kdctl as the learner's user.
#include <chrono>
#include <cstdio>
#include <string>

#include <CLI/CLI.hpp>
#include <nlohmann/json.hpp>

#include "daemon/kdctl/report.h"
#include "update/signing.h"
#include "wire/admin_commands.h"
#include "wire/curve_keys.h"
#include "wire/endpoint.h"

namespace kd {
namespace {
using json = nlohmann::json;

int Fail(const Status& s) {
  std::fprintf(stderr, "kdctl: error: %s\n", s.ToString().c_str());
  return s.IsInvalidArgument() ? 2 : 1;
}

Result<json> Call(const std::string& admin, const json& request) {
  KD_ASSIGN_OR_RETURN(auto reply, wire::AdminCall(admin, request.dump(), std::chrono::milliseconds(5000)));
  try {
    auto j = json::parse(reply);
    if (!j.value("ok", false)) return Status::FailedPrecondition(j.value("error", std::string("request refused")));
    return j;
  } catch (const std::exception& e) {
    return Status::Corruption(std::string("reply is not JSON: ") + e.what());
  }
}

void PrintStatus(const json& j) {
  std::printf("%-16s %-12s %-7s %-8s %-9s %-12s %7s %8s %10s %10s\n", "DEVICE", "GROUP", "ONLINE", "RUNNING",
              "COMMITTED", "STATE", "FPS", "STORED", "UP kbps", "DOWN kbps");
  // kbps: payload bits/s, moving average over ~30 s (downloads are bursts).
  for (const auto& [id, d] : j.at("devices").items()) {
    std::printf("%-16s %-12s %-7s v%-7llu v%-8llu %-12s %7.1f %8llu %10.1f %10.1f\n", id.c_str(),
                d.value("group", "").c_str(), d.value("online", false) ? "yes" : "no",
                static_cast<unsigned long long>(d.value("running_version", 0ULL)),
                static_cast<unsigned long long>(d.value("committed_version", 0ULL)), d.value("state", "").c_str(),
                d.value("fps", 0.0), static_cast<unsigned long long>(d.value("frames_stored", 0ULL)),
                d.value("uplink_kbps", 0.0), d.value("downlink_kbps", 0.0));
  }
  std::printf("\n%-12s %-7s %-9s %-8s %-7s %s\n", "GROUP", "LATEST", "LABELLED", "HELDOUT", "ROLLOUT",
              "VERSIONS: AP/AP50 on held-out frames vs their refined teacher labels, at publication "
              "(AP gain over the version it replaced)");
  for (const auto& [name, g] : j.at("groups").items()) {
    std::string versions;
    for (const auto& v : g.at("versions")) {
      char buf[96];
      const auto ver = static_cast<unsigned long long>(v.value("version", 0ULL));
      const double ap = v.value("ap", -1.0), base = v.value("ap_base", -1.0), ap50 = v.value("ap50", -1.0);
      if (v.value("revert_of", 0ULL) != 0) {
        std::snprintf(buf, sizeof buf, "v%llu(=v%llu) ", ver,
                      static_cast<unsigned long long>(v.value("revert_of", 0ULL)));
      } else if (ap50 < 0) {
        std::snprintf(buf, sizeof buf, "v%llu(factory) ", ver);
      } else if (ap < 0) {  // published before the gate measured AP
        std::snprintf(buf, sizeof buf, "v%llu=-/%.3f ", ver, ap50);
      } else {
        std::snprintf(buf, sizeof buf, "v%llu=%.3f/%.3f(%+.3f) ", ver, ap, ap50, ap - base);
      }
      versions += buf;
    }
    const auto& r = g.at("rollout");
    std::printf(
        "%-12s v%-6llu %-9llu %-8llu %-7s %s\n", name.c_str(), static_cast<unsigned long long>(g.value("latest", 0ULL)),
        static_cast<unsigned long long>(g.value("labelled", 0ULL)),
        static_cast<unsigned long long>(g.value("held_out", 0ULL)), r.value("stage", "").c_str(), versions.c_str());
  }
  if (!j.contains("schedule") || !j["schedule"].is_object()) return;
  const json& sched = j["schedule"];
  // Which group trains next: the scheduler's ledger and why it last picked each group.
  std::printf("\n%-12s %7s %9s %6s %6s %9s %s\n", "GROUP", "ROUNDS", "TRAINER s", "SHARE", "DRIFT", "BACKOFF s",
              "LAST PICK");
  const json groups = sched.value("groups", json::object());
  for (const auto& [name, g] : groups.items()) {
    std::printf("%-12s %7llu %9.1f %6.2f %6.2f %9.0f %s\n", name.c_str(),
                static_cast<unsigned long long>(g.value("rounds", 0ULL)), g.value("trainer_seconds", 0.0),
                g.value("share", 1.0), g.value("drift", 0.0), g.value("backoff_s", 0.0),
                g.value("last_pick", "").c_str());
  }
  if (!sched.contains("workers")) return;
  std::printf("\n%-6s %-24s %-5s %-6s %8s %8s %-12s %s\n", "WORKER", "NAME", "ROLE", "STATE", "JOBS", "RESULTS",
              "TRAINING", ("GROUPS (generation " + std::to_string(sched.value("generation", 0ULL)) + ")").c_str());
  for (const auto& w : sched["workers"]) {
    std::string placed;
    for (const auto& g : w.value("groups", json::array())) placed += g.get<std::string>() + " ";
    std::printf("%-6llu %-24s %-5s %-6s %8llu %8llu %-12s %s\n", static_cast<unsigned long long>(w.value("id", 0ULL)),
                w.value("name", "").c_str(), w.value("role", "train").c_str(), w.value("state", "").c_str(),
                static_cast<unsigned long long>(w.value("jobs", 0ULL)),
                static_cast<unsigned long long>(w.value("results", 0ULL)),
                w["training"].is_string() ? w["training"].get<std::string>().c_str() : "-", placed.c_str());
  }
}

}  // namespace
}  // namespace kd

int main(int argc, char** argv) {
  using namespace kd;  // NOLINT(google-build-using-namespace): a composition root
  CLI::App app{"kdctl: operator commands for kdlearnd and kdedge"};
  app.require_subcommand(1);
  std::string admin, store;
  auto add_admin = [&](CLI::App* cmd) {
    cmd->add_option("--admin", admin, "The learner's admin endpoint (ipc://...)");
    cmd->add_option("--store", store, "The learner's store path (admin endpoint ipc://<store>/admin.sock)");
  };

  auto* keygen = app.add_subcommand("keygen", "Generate a key pair");
  std::string kind, secret_path, public_path;
  keygen->add_option("kind", kind, "curve (transport: learner or device) | signing (ed25519 model signing)")
      ->required()
      ->check(CLI::IsMember({"curve", "signing"}));
  keygen->add_option("--secret", secret_path, "Secret key file to write (mode 0600)")->required();
  keygen->add_option("--public", public_path, "Public key file to write")->required();

  auto* enroll = app.add_subcommand("enroll", "Allow a device's CURVE public key on the learner");
  std::string device, key_file;
  add_admin(enroll);
  enroll->add_option("--device", device, "Device id")->required();
  enroll->add_option("--key", key_file, "The device's CURVE public key file")->required();

  auto* revoke = app.add_subcommand("revoke", "Refuse a device from now on");
  add_admin(revoke);
  revoke->add_option("--device", device, "Device id")->required();

  auto* status = app.add_subcommand("status", "Devices, versions, rates and rollouts");
  bool as_json = false;
  add_admin(status);
  status->add_flag("--json", as_json, "Print the raw JSON");

  auto* rollout = app.add_subcommand("rollout", "Start or roll back a group's rollout");
  std::string action, group;
  uint64_t version = 0;
  add_admin(rollout);
  rollout->add_option("action", action, "start | rollback")
      ->required()
      ->check(CLI::IsMember({wire::admin::kRolloutStart, wire::admin::kRolloutRollback}));
  rollout->add_option("--group", group, "Student group (a device id by default)")->required();
  rollout->add_option("--version", version, "Version to roll out (start; default: the latest)");

  auto* report = app.add_subcommand("report", "Write results.csv and PNG plots of each group's training rounds");
  std::string out_dir;
  add_admin(report);
  report->add_option("--out", out_dir, "Folder to write into (one subfolder per group)")->required();

  CLI11_PARSE(app, argc, argv);
  if (admin.empty() && !store.empty()) admin = "ipc://" + store + "/admin.sock";
  auto need_admin = [&]() -> bool {
    if (admin.empty()) std::fprintf(stderr, "kdctl: error: give --admin or --store\n");
    return !admin.empty();
  };

  if (*keygen) {
    if (kind == "curve") {
      auto k = wire::GenerateCurveKeyPair();
      if (!k.ok()) return Fail(k.status());
      if (Status s = wire::WriteCurveKeyPair(secret_path, public_path, *k); !s.ok()) return Fail(s);
      std::printf("%s\n", k->public_key.c_str());
    } else {
      auto k = update::GenerateSigningKey();
      if (!k.ok()) return Fail(k.status());
      if (Status s = update::WriteSigningKey(secret_path, public_path, *k); !s.ok()) return Fail(s);
      std::printf("key id %s\n", update::KeyId(k->public_key).c_str());
    }
    return 0;
  }
  if (!need_admin()) return 2;
  Result<nlohmann::json> reply = Status::Internal("no command");
  if (*enroll) {
    auto key = wire::ReadCurvePublicKey(key_file);
    if (!key.ok()) return Fail(key.status());
    reply =
        Call(admin,
             {{wire::admin::kCmd, wire::admin::kEnrollCmd}, {wire::admin::kDevice, device}, {wire::admin::kKey, *key}});
  } else if (*revoke) {
    reply = Call(admin, {{wire::admin::kCmd, wire::admin::kRevokeCmd}, {wire::admin::kDevice, device}});
  } else if (*status) {
    reply = Call(admin, {{wire::admin::kCmd, wire::admin::kStatusCmd}});
    if (reply.ok()) {
      if (as_json) {
        std::printf("%s\n", reply->dump(2).c_str());
      } else {
        PrintStatus(*reply);
      }
      return 0;
    }
    if (as_json) {  // scripts reading --json get a document either way
      std::printf(
          "%s\n",
          json{{"ok", false}, {"error", reply.status().message()}, {"code", StatusCodeName(reply.status().code())}}
              .dump(2)
              .c_str());
    }
  } else if (*report) {
    reply = Call(admin, {{wire::admin::kCmd, wire::admin::kRoundsCmd}});
    if (!reply.ok()) return Fail(reply.status());
    auto written = kdctl::WriteRunReport(*reply, out_dir);
    if (!written.ok()) return Fail(written.status());
    for (const std::string& path : *written) std::printf("%s\n", path.c_str());
    std::fprintf(stderr, "kdctl: report of %zu group(s) written to %s\n", reply->at("groups").size(), out_dir.c_str());
    return 0;
  } else if (*rollout) {
    nlohmann::json req{
        {wire::admin::kCmd, wire::admin::kRolloutCmd}, {wire::admin::kGroup, group}, {wire::admin::kAction, action}};
    if (version) req[wire::admin::kVersion] = version;
    reply = Call(admin, req);
  }
  if (!reply.ok()) return Fail(reply.status());
  std::printf("ok\n");
  return 0;
}
