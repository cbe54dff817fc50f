// Command mofang runs MoFang Live: the JSON-RPC API of live rooms and the
// media engine, in one process.
//
//	mofang serve                 run the service (applies migrations first)
//	mofang migrate               apply database migrations and exit
//	mofang user create NAME      create a user (--admin for an admin)
//	mofang user promote NAME     make a user an admin (--demote: no longer)
//	mofang user delete NAME      delete a user (its tokens stop working)
//	mofang config print          print the configuration in effect
//	mofang bench rpc|room|fanout|hls  load benchmarks: API, room events, media, HLS
//	mofang version               print the version
//
// Run "mofang <command> -h" for the flags of a command. Every command
// reads the same configuration: flags, MOFANG_* variables and the YAML
// file named by --config.
package main

import (
	"bufio"
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"strings"
	"syscall"

	"golang.org/x/crypto/bcrypt"

	"github.com/mofang-live/mofang/store"
)

// version is set at build time with -ldflags "-X main.version=...".
var version = "dev"

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	err := run(ctx, os.Args[1:], os.Stdin, os.Stdout, os.Stderr)
	stop()
	if err != nil {
		if !errors.Is(err, flag.ErrHelp) {
			fmt.Fprintln(os.Stderr, "mofang:", err)
		}
		os.Exit(2)
	}
}

const usage = `usage: mofang <command> [flags]

commands:
  serve                 run the service (applies migrations first)
  migrate               apply database migrations and exit
  user create NAME      create a user (--admin, --password or MOFANG_PASSWORD or stdin)
  user promote NAME     make a user an admin (--demote to undo)
  user delete NAME      delete a user: it can no longer log in, its tokens stop working
  config print          print the configuration in effect
  bench rpc|room|fanout|hls  load benchmarks: the API, room events, media fan-out, HLS
  version               print the version
`

// run is main without the process: it parses args and runs a command
// until ctx ends.
func run(ctx context.Context, args []string, stdin io.Reader, stdout, stderr io.Writer) error {
	if len(args) == 0 {
		fmt.Fprint(stderr, usage)
		return flag.ErrHelp
	}
	switch cmd, rest := args[0], args[1:]; cmd {
	case "serve":
		return serveCommand(ctx, rest, stderr)
	case "migrate":
		return migrateCommand(ctx, rest, stdout, stderr)
	case "user":
		return userCommand(ctx, rest, stdin, stdout, stderr)
	case "config":
		if len(rest) == 0 || rest[0] != "print" {
			return errors.New("usage: mofang config print [flags]")
		}
		cfg, _, err := loadConfig("config print", rest[1:], stderr, nil)
		if err != nil {
			return err
		}
		cfg.print(stdout)
		return nil
	case "bench":
		return benchCommand(ctx, rest, stdout, stderr)
	case "version":
		fmt.Fprintln(stdout, "mofang", version)
		return nil
	case "help", "-h", "--help":
		fmt.Fprint(stdout, usage)
		return nil
	}
	fmt.Fprint(stderr, usage)
	return fmt.Errorf("unknown command %q", args[0])
}

func serveCommand(ctx context.Context, args []string, stderr io.Writer) error {
	cfg, _, err := loadConfig("serve", args, stderr, nil)
	if err != nil {
		return err
	}
	log, err := cfg.logger(stderr)
	if err != nil {
		return err
	}
	svc, err := newService(ctx, *cfg, log)
	if err != nil {
		return err
	}
	return svc.run(ctx)
}

func migrateCommand(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	cfg, _, err := loadConfig("migrate", args, stderr, nil)
	if err != nil {
		return err
	}
	st, err := openStore(ctx, cfg.dbDSN())
	if err != nil {
		return err
	}
	defer st.Close()
	applied, err := st.Migrate(ctx)
	if err != nil {
		return err
	}
	if len(applied) == 0 {
		fmt.Fprintln(stdout, "schema is up to date")
	} else {
		fmt.Fprintln(stdout, "applied migrations", applied)
	}
	return nil
}

// userCommand manages users from the command line: the way to make the
// first admin.
func userCommand(ctx context.Context, args []string, stdin io.Reader, stdout, stderr io.Writer) error {
	if len(args) == 0 || (args[0] != "create" && args[0] != "promote" && args[0] != "delete") {
		return errors.New("usage: mofang user create|promote|delete [flags] NAME")
	}
	sub := args[0]
	var admin, demote bool
	var password string
	cfg, fs, err := loadConfig("user "+sub, args[1:], stderr, func(fs *flag.FlagSet) {
		if sub == "create" {
			fs.BoolVar(&admin, "admin", false, "make the user an admin")
			fs.StringVar(&password, "password", "", "the user's password (else MOFANG_PASSWORD, else the first line of stdin)")
		} else if sub == "promote" {
			fs.BoolVar(&demote, "demote", false, "take admin rights away instead")
		}
	})
	if err != nil {
		return err
	}
	if fs.NArg() != 1 {
		return fmt.Errorf("usage: mofang user %s [flags] NAME", sub)
	}
	name := fs.Arg(0)
	st, err := openStore(ctx, cfg.dbDSN())
	if err != nil {
		return err
	}
	defer st.Close()
	if _, err := st.Migrate(ctx); err != nil {
		return err
	}

	if sub == "delete" {
		u, err := st.UserByName(ctx, name)
		if err != nil {
			return fmt.Errorf("user %q: %w", name, err)
		}
		if err := st.DeleteUser(ctx, u.ID); err != nil {
			return err
		}
		fmt.Fprintf(stdout, "deleted user %s (id %d)\n", u.Name, u.ID)
		return nil
	}
	if sub == "promote" {
		u, err := st.UserByName(ctx, name)
		if err != nil {
			return fmt.Errorf("user %q: %w", name, err)
		}
		if err := st.SetAdmin(ctx, u.ID, !demote); err != nil {
			return err
		}
		fmt.Fprintf(stdout, "user %s (id %d) admin: %v\n", u.Name, u.ID, !demote)
		return nil
	}

	if password == "" {
		password = os.Getenv("MOFANG_PASSWORD")
	}
	if password == "" {
		line, err := bufio.NewReader(stdin).ReadString('\n')
		if err != nil && line == "" {
			return errors.New("no password: give --password, MOFANG_PASSWORD or a line on stdin")
		}
		password = strings.TrimRight(line, "\r\n")
	}
	if n := len(password); n < 6 || n > 72 {
		return errors.New("the password must be 6 to 72 bytes")
	}
	hash, err := bcrypt.GenerateFromPassword([]byte(password), bcrypt.DefaultCost)
	if err != nil {
		return err
	}
	u, err := st.CreateUser(ctx, store.NewUser{Name: name, PasswordHash: string(hash), Nickname: name, IsAdmin: admin})
	if err != nil {
		return fmt.Errorf("creating user %q: %w", name, err)
	}
	fmt.Fprintf(stdout, "created user %s (id %d), admin: %v\n", u.Name, u.ID, u.IsAdmin)
	return nil
}
