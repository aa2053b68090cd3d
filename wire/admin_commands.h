// The admin socket's vocabulary (wire/PROTOCOL.md section 10): the request names and fields that
// kdctl sends and kdlearnd answers, written once here so the two cannot drift. A request is one
// JSON object with "cmd" set to one of the k*Cmd names; a reply has "ok": true, or "ok": false
// with "error". Plain constants: no state, no threading concerns.
#ifndef KD_WIRE_ADMIN_COMMANDS_H_
#define KD_WIRE_ADMIN_COMMANDS_H_

namespace kd::wire::admin {

inline constexpr char kCmd[] = "cmd";

// {"cmd":"status"} -> the learner's status document (kdctl status --json prints it).
inline constexpr char kStatusCmd[] = "status";
// {"cmd":"enroll","device":ID,"key":Z85} -> allows a device's CURVE public key (persisted).
inline constexpr char kEnrollCmd[] = "enroll";
// {"cmd":"revoke","device":ID} -> refuses the device from now on (persisted).
inline constexpr char kRevokeCmd[] = "revoke";
// {"cmd":"rollout","group":G,"action":"start"|"rollback"[,"version":V]}.
inline constexpr char kRolloutCmd[] = "rollout";
// {"cmd":"rounds"[,"group":G][,"limit":N]} -> {"groups": {G: {"rounds": [round records, oldest
// first], "versions": [version records]}}} (storage/FORMAT.md `round/`): kdctl report reads it.
inline constexpr char kRoundsCmd[] = "rounds";
inline constexpr char kLimit[] = "limit";

inline constexpr char kDevice[] = "device";
inline constexpr char kKey[] = "key";
inline constexpr char kGroup[] = "group";
inline constexpr char kAction[] = "action";
inline constexpr char kVersion[] = "version";
inline constexpr char kRolloutStart[] = "start";
inline constexpr char kRolloutRollback[] = "rollback";

inline constexpr char kOk[] = "ok";
inline constexpr char kError[] = "error";

}  // namespace kd::wire::admin

#endif  // KD_WIRE_ADMIN_COMMANDS_H_
