package mdns

import (
	"context"
	"fmt"
	"log/slog"

	"github.com/pion/logging"
)

// pionLogger hands pion/mdns's log lines to slog. pion warns per packet
// (a malformed packet from any host on the LAN, a failed send), so its
// warnings go to Debug, not Warn: the responder logs its own state changes.
type pionLogger struct{ log *slog.Logger }

func (f pionLogger) NewLogger(scope string) logging.LeveledLogger {
	return pionLevels{f.log.With("pion", scope)}
}

type pionLevels struct{ log *slog.Logger }

const levelTrace = slog.LevelDebug - 4

func (l pionLevels) emit(level slog.Level, format string, args ...any) {
	ctx := context.Background()
	if !l.log.Enabled(ctx, level) {
		return
	}
	msg := format
	if len(args) > 0 {
		msg = fmt.Sprintf(format, args...)
	}
	l.log.Log(ctx, level, msg)
}

func (l pionLevels) Trace(msg string)                  { l.emit(levelTrace, "%s", msg) }
func (l pionLevels) Tracef(format string, args ...any) { l.emit(levelTrace, format, args...) }
func (l pionLevels) Debug(msg string)                  { l.emit(slog.LevelDebug, "%s", msg) }
func (l pionLevels) Debugf(format string, args ...any) { l.emit(slog.LevelDebug, format, args...) }
func (l pionLevels) Info(msg string)                   { l.emit(slog.LevelDebug, "%s", msg) }
func (l pionLevels) Infof(format string, args ...any)  { l.emit(slog.LevelDebug, format, args...) }
func (l pionLevels) Warn(msg string)                   { l.emit(slog.LevelDebug, "%s", msg) }
func (l pionLevels) Warnf(format string, args ...any)  { l.emit(slog.LevelDebug, format, args...) }
func (l pionLevels) Error(msg string)                  { l.emit(slog.LevelWarn, "%s", msg) }
func (l pionLevels) Errorf(format string, args ...any) { l.emit(slog.LevelWarn, format, args...) }
