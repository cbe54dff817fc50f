package record

import (
	"io"
	"io/fs"
	"os"
)

// FS is where recordings are written. Names are slash-separated and
// relative to the recordings directory. The default (DirFS) confines every
// operation to that directory; tests inject failures through their own FS.
type FS interface {
	MkdirAll(name string, perm fs.FileMode) error
	Create(name string) (io.WriteCloser, error)
	Rename(oldname, newname string) error
	RemoveAll(name string) error
}

// DirFS is an FS rooted in a directory with os.Root: names escaping the
// directory, through ".." or symbolic links, fail.
type DirFS struct {
	root *os.Root
}

// OpenDirFS creates dir if needed and opens it as an FS.
func OpenDirFS(dir string) (*DirFS, error) {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, err
	}
	r, err := os.OpenRoot(dir)
	if err != nil {
		return nil, err
	}
	return &DirFS{root: r}, nil
}

// MkdirAll implements FS.
func (d *DirFS) MkdirAll(name string, perm fs.FileMode) error { return d.root.MkdirAll(name, perm) }

// Create implements FS.
func (d *DirFS) Create(name string) (io.WriteCloser, error) { return d.root.Create(name) }

// Rename implements FS.
func (d *DirFS) Rename(oldname, newname string) error { return d.root.Rename(oldname, newname) }

// RemoveAll implements FS.
func (d *DirFS) RemoveAll(name string) error { return d.root.RemoveAll(name) }

// Close releases the directory.
func (d *DirFS) Close() error { return d.root.Close() }
