package control

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/ringdns/ringdns/internal/testenv"
)

// nobody is the uid the squatting tests give files to.
const nobody = 65534

// chownRoot is what the squatting tests need root for.
const chownRoot = "to chown files to another user"

// TestDefaultPathPerEnvironment checks the default socket path for each
// environment: $XDG_RUNTIME_DIR when it is an absolute path (the XDG Base
// Directory specification says to ignore a relative one), else a directory
// of ringdns's own, never a name directly in a directory others can write.
func TestDefaultPathPerEnvironment(t *testing.T) {
	xdg := t.TempDir()
	own := filepath.Join(os.TempDir(), fmt.Sprintf("ringdns-%d", os.Geteuid()), "ringdns.sock")
	if os.Geteuid() == 0 {
		own = "/run/ringdns/ringdns.sock"
	}
	for _, tc := range []struct{ xdg, want string }{
		{xdg, filepath.Join(xdg, "ringdns.sock")},
		{xdg + "/", filepath.Join(xdg, "ringdns.sock")},
		{"", own},
		{"relative/run", own},
	} {
		t.Setenv("XDG_RUNTIME_DIR", tc.xdg)
		if got := DefaultPath(); got != tc.want {
			t.Errorf("XDG_RUNTIME_DIR=%q euid %d: %s, want %s", tc.xdg, os.Geteuid(), got, tc.want)
		}
	}
}

// TestPrepareSocketPathRefusesSquattedDirectory points $XDG_RUNTIME_DIR at
// directories another user could have prepared: the daemon must refuse to
// put its default socket there rather than serve where a squatter can
// replace the socket.
func TestPrepareSocketPathRefusesSquattedDirectory(t *testing.T) {
	testenv.RequireRoot(t, chownRoot)
	for _, tc := range []struct {
		name  string
		setup func(t *testing.T, dir string)
		want  string
	}{
		{"owned by another user", func(t *testing.T, dir string) {
			if err := os.Chown(dir, nobody, nobody); err != nil {
				t.Fatal(err)
			}
		}, fmt.Sprintf("belongs to uid %d", nobody)},
		{"writable by everyone", func(t *testing.T, dir string) {
			if err := os.Chmod(dir, 0o777); err != nil {
				t.Fatal(err)
			}
		}, "mode 0777"},
		{"writable by everyone, sticky", func(t *testing.T, dir string) {
			if err := os.Chmod(dir, 0o777|os.ModeSticky); err != nil {
				t.Fatal(err)
			}
		}, "mode 0777"},
		{"writable by the group", func(t *testing.T, dir string) {
			if err := os.Chmod(dir, 0o770); err != nil {
				t.Fatal(err)
			}
		}, "mode 0770"},
		{"a symbolic link", func(t *testing.T, dir string) {
			// The link is the directory named; its target is ours and private.
			target := dir + ".target"
			if err := os.Rename(dir, target); err != nil {
				t.Fatal(err)
			}
			if err := os.Symlink(target, dir); err != nil {
				t.Fatal(err)
			}
		}, "is a symbolic link"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir := filepath.Join(t.TempDir(), "run")
			if err := os.Mkdir(dir, 0o700); err != nil {
				t.Fatal(err)
			}
			tc.setup(t, dir)
			t.Setenv("XDG_RUNTIME_DIR", dir)
			path := DefaultPath()
			err := PrepareSocketPath(path)
			if err == nil {
				t.Fatalf("PrepareSocketPath accepted a directory %s", tc.name)
			}
			if !strings.Contains(err.Error(), dir) || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("error %q does not name %s and say %q", err, dir, tc.want)
			}
		})
	}
}

// TestDefaultDir checks the choice of directory for users the test
// cannot become: root gets /run/ringdns, anyone else a directory of their
// own under the temporary directory, both made by ringdns; a relative
// $XDG_RUNTIME_DIR is ignored.
func TestDefaultDir(t *testing.T) {
	t.Setenv("TMPDIR", "/var/tmp")
	for _, tc := range []struct {
		xdg    string
		euid   int
		path   string
		create bool
	}{
		{"/run/user/1000", 1000, "/run/user/1000", false},
		{"/run/user/0/", 0, "/run/user/0", false},
		{"", 0, "/run/ringdns", true},
		{"", 1000, "/var/tmp/ringdns-1000", true},
		{"run/user/1000", 1000, "/var/tmp/ringdns-1000", true},
	} {
		d := defaultDir(tc.xdg, tc.euid)
		if d.path != tc.path || d.create != tc.create {
			t.Errorf("XDG_RUNTIME_DIR=%q euid %d: %s (create %v), want %s (create %v)",
				tc.xdg, tc.euid, d.path, d.create, tc.path, tc.create)
		}
	}
}

// TestSocketDirCreated checks the directory ringdns makes for its socket
// when there is no $XDG_RUNTIME_DIR: made mode 0700 when missing, used
// when it is the user's own with that mode, refused with the reason when
// another user may have made it first or may write to it.
func TestSocketDirCreated(t *testing.T) {
	testenv.RequireRoot(t, chownRoot)
	me := os.Geteuid()
	for _, tc := range []struct {
		name  string
		setup func(t *testing.T, dir string)
		euid  int    // the user ringdns runs as
		want  string // in the error; empty when accepted
	}{
		{"missing", nil, me, ""},
		{"own, 0700", mkdir(0o700, -1), me, ""},
		{"own, made by another user for it", mkdir(0o700, nobody), nobody, ""},
		{"made by another user", mkdir(0o700, nobody), me, fmt.Sprintf("belongs to uid %d, not to uid %d", nobody, me)},
		{"made by root for another user", mkdir(0o700, -1), nobody, fmt.Sprintf("belongs to uid %d, not to uid %d", me, nobody)},
		{"own, 0755", mkdir(0o755, -1), me, "mode 0755"},
		{"own, 0777", mkdir(0o777, -1), me, "mode 0777"},
		{"own, 0500", mkdir(0o500, -1), me, "mode 0500"},
		{"a symbolic link to an own 0700 directory", func(t *testing.T, dir string) {
			mkdir(0o700, -1)(t, dir+".target")
			if err := os.Symlink(dir+".target", dir); err != nil {
				t.Fatal(err)
			}
		}, me, "is a symbolic link"},
		{"a regular file", func(t *testing.T, dir string) {
			if err := os.WriteFile(dir, nil, 0o600); err != nil {
				t.Fatal(err)
			}
		}, me, "is a regular file"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir := filepath.Join(t.TempDir(), fmt.Sprintf("ringdns-%d", tc.euid))
			if tc.setup != nil {
				tc.setup(t, dir)
			}
			before, _ := os.Lstat(dir)
			err := socketDir{path: dir, create: true, fix: "remove it"}.prepare(tc.euid)
			if tc.want == "" {
				if err != nil {
					t.Fatal(err)
				}
				fi, err := os.Lstat(dir)
				if err != nil || !fi.IsDir() || fi.Mode().Perm() != 0o700 || fileOwner(fi) != tc.euid {
					t.Errorf("accepted %v, uid %d, %v; want a directory 0700 of uid %d", fi.Mode(), fileOwner(fi), err, tc.euid)
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), dir) || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("prepare: %v; want an error naming %s and saying %q", err, dir, tc.want)
			}
			if after, _ := os.Lstat(dir); !os.SameFile(before, after) || before.Mode() != after.Mode() {
				t.Errorf("the refused %s was changed", tc.name)
			}
		})
	}
}

// mkdir makes a directory with mode perm, given to uid unless it is -1.
func mkdir(perm os.FileMode, uid int) func(t *testing.T, dir string) {
	return func(t *testing.T, dir string) {
		if err := os.Mkdir(dir, perm); err != nil {
			t.Fatal(err)
		}
		if err := os.Chmod(dir, perm); err != nil { // past the umask
			t.Fatal(err)
		}
		if uid >= 0 {
			if err := os.Chown(dir, uid, uid); err != nil {
				t.Fatal(err)
			}
		}
	}
}
