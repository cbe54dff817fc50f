// Command mofang runs MoFang Live: the JSON-RPC API of live rooms and the
// media engine, in one process.
//
//	mofang serve      run the service (applies migrations first)
//	mofang migrate    apply database migrations and exit
//	mofang bench rpc  measure the JSON-RPC endpoint under load
//	mofang version    print the version
//
// Run "mofang <command> -h" for the flags of a command.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"syscall"
)

// version is set at build time with -ldflags "-X main.version=...".
var version = "dev"

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	err := run(ctx, os.Args[1:], os.Stdout, os.Stderr)
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
  serve      run the service (applies migrations first)
  migrate    apply database migrations and exit
  bench rpc  measure the JSON-RPC endpoint under load
  version    print the version
`

// run is main without the process: it parses args and runs a command
// until ctx ends.
func run(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	if len(args) == 0 {
		fmt.Fprint(stderr, usage)
		return flag.ErrHelp
	}
	switch args[0] {
	case "serve":
		return serveCommand(ctx, args[1:], stderr)
	case "migrate":
		return migrateCommand(ctx, args[1:], stdout, stderr)
	case "bench":
		return benchCommand(ctx, args[1:], stdout, stderr)
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
	fs := newFlagSet()
	fs.SetOutput(stderr)
	var cfg config
	cfg.bindFlags(fs)
	if err := fs.Parse(args); err != nil {
		return err
	}
	log, err := cfg.logger()
	if err != nil {
		return err
	}
	svc, err := newService(ctx, cfg, log)
	if err != nil {
		return err
	}
	return svc.run(ctx)
}

func migrateCommand(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := newFlagSet()
	fs.SetOutput(stderr)
	var cfg config
	cfg.bindFlags(fs)
	if err := fs.Parse(args); err != nil {
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

// newFlagSet returns an empty flag set that reports errors to its caller.
func newFlagSet() *flag.FlagSet {
	return flag.NewFlagSet("mofang", flag.ContinueOnError)
}
