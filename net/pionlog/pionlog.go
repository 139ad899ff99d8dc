// Package pionlog hands the log lines of pion's objects (webrtc's SettingEngine, the ICE
// UDP mux, turn's server, mdns) to log/slog, so that everything the box logs goes through
// the one logger firmware makes, with pion's scope as the "pion" attribute. pion logs at
// Info what is routine for it (a new candidate, a closed connection): that is Debug here.
package pionlog

import (
	"context"
	"fmt"
	"log/slog"

	"github.com/pion/logging"
)

// levelTrace is below slog's Debug: pion's tracing, per packet.
const levelTrace = slog.LevelDebug - 4

// Factory is a logging.LoggerFactory writing to Logger (slog.Default when nil). Quiet
// moves pion's warnings to Debug and its errors to Warn: for pion objects that warn per
// packet from any host on the LAN (mdns), where the caller logs its own state changes.
type Factory struct {
	Logger *slog.Logger
	Quiet  bool
}

// New is a Factory writing to log.
func New(log *slog.Logger) Factory { return Factory{Logger: log} }

// NewLogger implements logging.LoggerFactory.
func (f Factory) NewLogger(scope string) logging.LeveledLogger {
	log := f.Logger
	if log == nil {
		log = slog.Default()
	}
	warn, errLevel := slog.LevelWarn, slog.LevelError
	if f.Quiet {
		warn, errLevel = slog.LevelDebug, slog.LevelWarn
	}
	return leveled{log: log.With("pion", scope), warn: warn, err: errLevel}
}

type leveled struct {
	log       *slog.Logger
	warn, err slog.Level
}

func (l leveled) emit(level slog.Level, format string, args ...any) {
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

func (l leveled) Trace(msg string)                  { l.emit(levelTrace, "%s", msg) }
func (l leveled) Tracef(format string, args ...any) { l.emit(levelTrace, format, args...) }
func (l leveled) Debug(msg string)                  { l.emit(slog.LevelDebug, "%s", msg) }
func (l leveled) Debugf(format string, args ...any) { l.emit(slog.LevelDebug, format, args...) }
func (l leveled) Info(msg string)                   { l.emit(slog.LevelDebug, "%s", msg) }
func (l leveled) Infof(format string, args ...any)  { l.emit(slog.LevelDebug, format, args...) }
func (l leveled) Warn(msg string)                   { l.emit(l.warn, "%s", msg) }
func (l leveled) Warnf(format string, args ...any)  { l.emit(l.warn, format, args...) }
func (l leveled) Error(msg string)                  { l.emit(l.err, "%s", msg) }
func (l leveled) Errorf(format string, args ...any) { l.emit(l.err, format, args...) }
