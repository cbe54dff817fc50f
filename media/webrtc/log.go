package webrtc

import (
	"context"
	"fmt"
	"log/slog"

	"github.com/pion/logging"
)

// pionLogs routes pion's logs to slog. pion reports ordinary network events
// (a peer gone, a late packet) as warnings and errors, so everything it says
// is logged at debug level, with its scope.
type pionLogs struct{ log *slog.Logger }

// NewLogger implements logging.LoggerFactory.
func (f pionLogs) NewLogger(scope string) logging.LeveledLogger {
	return pionLogger{log: f.log.With("pion", scope)}
}

type pionLogger struct{ log *slog.Logger }

func (l pionLogger) enabled() bool { return l.log.Enabled(context.Background(), slog.LevelDebug) }

func (l pionLogger) print(level, msg string) {
	if l.enabled() {
		l.log.Debug(msg, "level", level)
	}
}

func (l pionLogger) printf(level, format string, args ...any) {
	if l.enabled() {
		l.log.Debug(fmt.Sprintf(format, args...), "level", level)
	}
}

func (l pionLogger) Trace(string)                 {}
func (l pionLogger) Tracef(string, ...any)        {}
func (l pionLogger) Debug(msg string)             { l.print("debug", msg) }
func (l pionLogger) Debugf(f string, args ...any) { l.printf("debug", f, args...) }
func (l pionLogger) Info(msg string)              { l.print("info", msg) }
func (l pionLogger) Infof(f string, args ...any)  { l.printf("info", f, args...) }
func (l pionLogger) Warn(msg string)              { l.print("warn", msg) }
func (l pionLogger) Warnf(f string, args ...any)  { l.printf("warn", f, args...) }
func (l pionLogger) Error(msg string)             { l.print("error", msg) }
func (l pionLogger) Errorf(f string, args ...any) { l.printf("error", f, args...) }
