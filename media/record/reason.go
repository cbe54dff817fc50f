package record

import (
	"errors"
	"io/fs"
	"syscall"
)

// Errors that stop a recording, besides the file system's.
var (
	errFellBehind = errors.New("writer fell behind")
	errSink       = errors.New("sink refused the recording")
)

// Reason returns what a recording's Info.Error says of err: a plain
// reason for the people who see it (a streamer's recording list), with no
// file name or server detail in it. err itself is for the logs.
func Reason(err error) string {
	switch {
	case err == nil:
		return ""
	case errors.Is(err, syscall.ENOSPC):
		return "the disk is full"
	case errors.Is(err, syscall.EDQUOT):
		return "the disk quota is used up"
	case errors.Is(err, syscall.EROFS):
		return "the disk is read-only"
	case errors.Is(err, fs.ErrPermission):
		return "the recordings folder may not be written to"
	case errors.Is(err, errFellBehind):
		return "the disk was too slow, the recording fell behind the stream"
	case errors.Is(err, errSink):
		return "the recording could not be registered"
	}
	return "writing the recording failed"
}
