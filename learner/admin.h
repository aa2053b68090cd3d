// AdminStage: operator requests from kdctl over the admin socket (wire/admin_commands.h, one JSON
// object per request and reply): status, enroll, revoke, rollout start|rollback. It also builds the
// status document (devices, groups with versions and rollout, ingest counters, store and socket
// health) that `kdctl status` shows.
//
// Threading: Run() is the stage's thread and the only user of the admin socket; HandleRequest and
// StatusDoc may be called from any thread. LoopState under its mu; persisting and publishing
// (a rollback) happen without it.
#ifndef KD_LEARNER_ADMIN_H_
#define KD_LEARNER_ADMIN_H_

#include <atomic>
#include <string>

#include "base/clock.h"
#include "base/status.h"
#include "learner/catalogue.h"
#include "learner/loop_state.h"
#include "learner/observe.h"
#include "learner/publisher.h"
#include "storage/sample_store.h"
#include "wire/endpoint.h"

namespace kd::learner {

// Allows `device_id` with CURVE key `public_key_z85` ("" = no key: insecure mode, or a static
// device without one) and puts it in its group. `auth` may be null (insecure mode).
Status EnrollDevice(LoopState& state, wire::Authenticator* auth, const std::string& device_id,
                    const std::string& public_key_z85);

class AdminStage {
 public:
  AdminStage(LoopState& state, Catalogue& catalogue, Publisher& publisher, wire::Authenticator* auth,
             StatusSources sources, const Clock& clock);

  // One request -> its reply (both JSON text). Never throws.
  std::string HandleRequest(const std::string& request);
  // The status document (a JSON object): devices, groups, versions, rollout, ingest, store.
  std::string StatusJson() const;
  // {"groups": {group: {"rounds": [...], "versions": [...]}}} for `group` ("" = every group), at most
  // the newest `limit` rounds each (0 = all kept): the round log (Catalogue::LoadRounds).
  std::string RoundsJson(const std::string& group, size_t limit) const;

  void Run(wire::AdminServer& admin, const std::atomic<bool>& stopping);

 private:
  LoopState& state_;
  Catalogue& catalogue_;
  Publisher& publisher_;
  wire::Authenticator* auth_;
  const StatusSources sources_;
  const Clock& clock_;
};

}  // namespace kd::learner

#endif  // KD_LEARNER_ADMIN_H_
