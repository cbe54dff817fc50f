package transcode

import (
	"os/exec"
	"syscall"
)

// setProcAttr has ffmpeg killed when the service dies, so that no
// transcoder outlives it.
func setProcAttr(cmd *exec.Cmd) {
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
}
