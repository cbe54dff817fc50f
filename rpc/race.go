//go:build race

package rpc

// raceEnabled tells whether the race detector is on (see
// frameWriter.writevNow; allocation counts are not exact under it).
const raceEnabled = true
