package web

import (
	"os/exec"
	"testing"
)

// TestPagesJS runs the node tests of the pages' plain modules: the
// formatting of durations and sizes (format_test.mjs on src/format.js),
// the codec of an HTTP-FLV stream's start (flvcodec_test.mjs on
// src/flvcodec.js), the plain parts of src/webrtc.js (webrtc_test.mjs)
// a call's media, src/call.js, with a fake RTCPeerConnection
// (call_test.mjs), and the catalogues of the pages' two languages with a
// scan of the sources for English text outside them (i18n_test.mjs).
func TestPagesJS(t *testing.T) {
	node, err := exec.LookPath("node")
	if err != nil {
		t.Fatalf("node is needed to test the pages (make web installs it): %v", err)
	}
	for _, script := range []string{"format_test.mjs", "flvcodec_test.mjs", "webrtc_test.mjs", "call_test.mjs", "i18n_test.mjs"} {
		out, err := exec.Command(node, script).CombinedOutput()
		if err != nil {
			t.Fatalf("%s: %v\n%s", script, err, out)
		}
		t.Logf("%s", out)
	}
}
