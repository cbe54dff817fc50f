// Package rediscluster is the cluster.Cluster of several MoFang nodes that
// share one Redis: the node registry, the stream directory with its fences,
// the nodes' reports and the commands between nodes. The Rooms and the
// Limiter of the same Redis live in this package too and share its
// connection (Cluster.Client).
//
// # What Redis holds
//
// Every key and channel starts with Config.Prefix ("mofang:" by default);
// below, P stands for it. Nothing grows without bound: every key either
// expires on its own or is an index (P nodes, P dir) whose members are
// pruned when the key they stand for is gone.
//
//   - P node:<id> (string, TTL LeaseTTL): the node's lease, its
//     cluster.Node as JSON plus the random instance of the process that
//     holds it. Refreshed every Refresh; a node whose lease lapsed is dead.
//   - P nodes (set): the IDs of the nodes that may be alive, the index the
//     view reads; members whose lease is gone are pruned.
//   - P report:<id> (string, TTL LeaseTTL): the node's last cluster.Report
//     as JSON ({"viewers":{stream:n},"clients":n,"list_sum":"..."}),
//     absolute values that lapse with the lease.
//   - P clients:<id> (string, TTL LeaseTTL): the node's client list as
//     the report gave it; the other nodes read it again only when the
//     report's list_sum changes.
//   - P claim:<stream> (hash, TTL LeaseTTL): the claim on a stream: node,
//     inst (the owner's instance), token (the claim's own random token),
//     fence, pub (the cluster.Publisher as JSON), grace ("0"/"1"), since
//     (Unix milliseconds, Redis's clock) and ver (the owner's write
//     counter). Only the owner refreshes it, with its lease, while the
//     token is still its own: a dead owner's claims lapse with its lease.
//   - P fence:<stream> (string, TTL 24 h after the stream's last claim):
//     the stream's fencing counter. Each claim takes the next value; a
//     counter that is missing (a new stream, a day without a claim, a
//     Redis restarted empty) starts again from Redis's clock in
//     milliseconds, so a stream's fences only ever grow.
//   - P dir (hash): the stream directory, the index the view reads: for
//     each claimed stream, its claim's node, instance, token, fence, grace,
//     since and publisher, one a line. Written with the claim, so one
//     HGETALL reads them all; an entry whose claim key is gone is pruned.
//   - P dirver (string, TTL 24 h after the last change): the directory's
//     version, changed with every write of P dir; a view reads P dir only
//     when it changed. Missing, it starts again from Redis's clock in
//     microseconds.
//   - channels P cmd (every node) and P cmd:<id> (one node): the commands
//     between nodes, over pub/sub: at most once, lost if nobody listens.
//
// # Fencing
//
// Claim, the owner's writes (SetGrace, SetPublisher, the refresh) and
// Release are Lua scripts that compare the claim's token: a node that lost
// a stream can never write over the claim that took it. A claim is taken
// over, with the next fence, when its owner set it in grace or when the
// owner's lease is gone or belongs to another process of the same ID.
//
// # Faults
//
// While Redis cannot be reached, Err wraps cluster.ErrUnavailable, the
// view's methods answer from the last view (this node's own claims and
// numbers stay current), Claim is refused with cluster.ErrUnavailable and
// the claims held go on locally. When Redis is back, the lease is written
// again, each claim is re-asserted with its fence if its key survived, or
// lapsed without anyone claiming the stream since, and is lost otherwise;
// the view catches up within ViewEvery.
package rediscluster
