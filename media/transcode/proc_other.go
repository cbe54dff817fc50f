//go:build !linux

package transcode

import "os/exec"

// setProcAttr does nothing here: only Linux kills a child with its parent.
func setProcAttr(*exec.Cmd) {}
