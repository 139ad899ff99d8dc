package main

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"strconv"
	"strings"
	"time"
)

// envFlags is a FlagSet whose every flag has a CHATTORRENT_* environment variable as its
// fallback: a flag beats the environment, the environment beats the default. A value in
// the environment that does not parse is a usage error, reported by parse. Each flag's
// help names its variable (serve -h lists them; the README promises one per flag).
type envFlags struct {
	*flag.FlagSet
	lookupEnv func(string) (string, bool)
	env       map[string]string // flag name → its environment variable
	errs      []error           // variables that did not parse
}

func newEnvFlags(name string, lookupEnv func(string) (string, bool), stderr io.Writer) *envFlags {
	fs := flag.NewFlagSet(name, flag.ContinueOnError)
	fs.SetOutput(stderr)
	return &envFlags{FlagSet: fs, lookupEnv: lookupEnv, env: make(map[string]string)}
}

// fromEnv registers name's variable and returns its value when set.
func (f *envFlags) fromEnv(name, key string) (string, bool) {
	f.env[name] = key
	return f.lookupEnv(key)
}

// withEnv adds "(env KEY)" to help that does not name its variable yet.
func withEnv(key, help string) string {
	if strings.Contains(help, key) {
		return help
	}
	return help + " (env " + key + ")"
}

// bad records a variable that does not parse.
func (f *envFlags) bad(key, v, want string) {
	f.errs = append(f.errs, fmt.Errorf("%s %q: want %s", key, v, want))
}

func (f *envFlags) String(p *string, name, key, def, help string) {
	if v, ok := f.fromEnv(name, key); ok {
		def = v
	}
	f.StringVar(p, name, def, withEnv(key, help))
}

func (f *envFlags) Bool(p *bool, name, key string, def bool, help string) {
	if v, ok := f.fromEnv(name, key); ok {
		if b, err := strconv.ParseBool(v); err == nil {
			def = b
		} else {
			f.bad(key, v, "true or false")
		}
	}
	f.BoolVar(p, name, def, withEnv(key, help))
}

func (f *envFlags) Int(p *int, name, key string, def int, help string) {
	if v, ok := f.fromEnv(name, key); ok {
		if n, err := strconv.Atoi(v); err == nil {
			def = n
		} else {
			f.bad(key, v, "an integer")
		}
	}
	f.IntVar(p, name, def, withEnv(key, help))
}

func (f *envFlags) Int64(p *int64, name, key string, def int64, help string) {
	if v, ok := f.fromEnv(name, key); ok {
		if n, err := strconv.ParseInt(v, 10, 64); err == nil {
			def = n
		} else {
			f.bad(key, v, "a number of bytes")
		}
	}
	f.Int64Var(p, name, def, withEnv(key, help))
}

func (f *envFlags) Duration(p *time.Duration, name, key string, def time.Duration, help string) {
	if v, ok := f.fromEnv(name, key); ok {
		if d, err := time.ParseDuration(v); err == nil {
			def = d
		} else {
			f.bad(key, v, "a duration such as 30s")
		}
	}
	f.DurationVar(p, name, def, withEnv(key, help))
}

// dataDir is the -data-dir flag every subcommand shares, with one default: /var/lib/
// chattorrent for root, else $XDG_STATE_HOME/chattorrent or ~/.local/state/chattorrent.
func (f *envFlags) dataDir(p *string) {
	f.String(p, "data-dir", "CHATTORRENT_DATA_DIR", defaultDataDir(os.Geteuid(), f.lookupEnv),
		"the appliance's data directory: certificates, identity, rooms, files (env CHATTORRENT_DATA_DIR; default\n"+
			"/var/lib/chattorrent as root, else $XDG_STATE_HOME/chattorrent or ~/.local/state/chattorrent)")
}

// parseMixed parses args with flags allowed before and after the positional arguments,
// which it returns in order; errors as parse's.
func (f *envFlags) parseMixed(args []string) ([]string, error) {
	var pos []string
	for {
		if err := f.parse(args); err != nil {
			return nil, err
		}
		if f.NArg() == 0 {
			return pos, nil
		}
		pos, args = append(pos, f.Arg(0)), f.Args()[1:]
	}
}

// parse parses args; garbage in the environment or in the flags is a usage error, and -h
// is errHelp.
func (f *envFlags) parse(args []string) error {
	if len(f.errs) > 0 {
		return usageError{err: fmt.Errorf("%s: %w", f.Name(), errors.Join(f.errs...))}
	}
	if err := f.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return errHelp
		}
		return usageError{err: err, printed: true}
	}
	return nil
}
