package board

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"time"

	"periph.io/x/conn/v3/gpio"
	"periph.io/x/conn/v3/gpio/gpioreg"
	"periph.io/x/host/v3"
)

// Features, as named in Status and AbsentError.
const (
	FeaturePushToTalk   = "push-to-talk button"
	FeatureExportButton = "export button"
	FeatureLED          = "status LED"
	FeatureMic          = "microphone"
	FeatureVolumes      = "USB stick watcher"
)

// ErrAbsent is matched (errors.Is) by every *AbsentError.
var ErrAbsent = errors.New("absent")

// AbsentError says that a piece of hardware is not there (or is turned off), and why.
type AbsentError struct {
	Feature string // one of the Feature constants
	Code    string // why, for a translated status page: one of the Absent… codes
	Reason  string // a plain English sentence for logs and the status page
	Err     error  // the underlying error, if any
}

// Codes of AbsentError: why a feature is absent, in words a page can translate.
const (
	AbsentOff       = "off"        // turned off in the configuration
	AbsentNoGPIO    = "no-gpio"    // GPIO drivers failed, or no GPIO device at all
	AbsentNoPin     = "no-pin"     // no pin by that name
	AbsentNoSound   = "no-sound"   // no sound card with a capture device
	AbsentNoArecord = "no-arecord" // the arecord fallback is not installed
	AbsentCannotUse = "cannot-use" // present but failed (Reason and Err say how)
)

func (e *AbsentError) Error() string {
	s := "board: no " + e.Feature + ": " + e.Reason
	if e.Err != nil {
		s += ": " + e.Err.Error()
	}
	return s
}

// Is makes errors.Is(err, ErrAbsent) true.
func (e *AbsentError) Is(target error) bool { return target == ErrAbsent }

// Unwrap returns the underlying error.
func (e *AbsentError) Unwrap() error { return e.Err }

// Config says which hardware to use. The zero value is the default wiring of
// docs/OPERATIONS.md ("Board"); "none" turns a feature off.
type Config struct {
	// PushToTalkPin is the push-to-talk button's GPIO, by periph name. Default "GPIO17"
	// (header pin 11), button to GND, internal pull-up.
	PushToTalkPin string
	// ExportPin is the export button's GPIO. Default "GPIO22" (header pin 15), button to GND.
	ExportPin string
	// LEDPin is the status LED's GPIO. Default "GPIO27" (header pin 13), through 330 Ω to the
	// LED's anode, cathode to GND.
	LEDPin string
	// ButtonsActiveHigh: buttons connect the pin to 3.3 V (pull-down) instead of GND.
	ButtonsActiveHigh bool
	// LEDActiveLow: the LED is lit when its pin is low.
	LEDActiveLow bool
	// Debounce for the buttons. Default 30 ms.
	Debounce time.Duration

	// Mic is "auto" (default: ALSA directly, arecord when that fails), "alsa", "arecord" or
	// "none".
	Mic string
	// MicDevice is the ALSA device: "hw:1,0" for "alsa"; any arecord -D name ("plughw:1,0",
	// "default") for "arecord". Default: the first card with a capture device (plughw:C,D
	// for arecord).
	MicDevice string

	// MountGlobs are where sticks are mounted. Default /media/*/* (Raspberry Pi OS desktop's
	// /media/<user>/<label>) and /media/* (usbmount's /media/usb0); "none" alone turns the
	// watcher off.
	MountGlobs []string
	// PollInterval is how often MountGlobs are checked. Default 1 s.
	PollInterval time.Duration

	// Logger gets one line per absent feature. Default slog.Default().
	Logger *slog.Logger
}

// FeatureStatus is one line of the status page.
type FeatureStatus struct {
	Feature string // one of the Feature constants
	OK      bool
	Detail  string // a plain English sentence: what is used, or why it is absent
	Code    string // "" when OK, else the AbsentError's code
	Err     error  // nil when OK; an *AbsentError (errors.Is ErrAbsent) when absent
}

// Board is the hardware found by Open. A field is nil when its hardware is absent; Status
// says why.
type Board struct {
	PushToTalk   Button  // nil when absent
	ExportButton Button  // nil when absent
	LED          LED     // nil when absent
	Mic          Mic     // nil when absent
	Volumes      Volumes // nil when turned off
	Status       []FeatureStatus

	pins []gpio.PinIO // to release on Close
}

// Open finds the hardware cfg names. Missing hardware is not an error: it is logged once
// (Warn) and listed in Status, and the rest works. Open returns an error only for a
// Config it cannot understand. ctx bounds the detection (a microphone is opened once).
func Open(ctx context.Context, cfg Config) (*Board, error) {
	switch cfg.Mic {
	case "", "auto", "alsa", "arecord", "none":
	default:
		return nil, fmt.Errorf("board: unknown Mic %q (want auto, alsa, arecord or none)", cfg.Mic)
	}
	log := cfg.Logger
	if log == nil {
		log = slog.Default()
	}
	o := &opener{cfg: cfg, log: log.With("component", "board"), b: &Board{}}
	o.buttons()
	o.led()
	o.mic(ctx)
	if err := o.volumes(); err != nil {
		return nil, err
	}
	return o.b, nil
}

// opener is one run of Open: the board being filled, one step per feature.
type opener struct {
	cfg     Config
	log     *slog.Logger
	b       *Board
	gpioErr error // host.Init's failure: every pin is then absent for the same reason
}

// report lists feature in Status and logs it: ready (err nil) or absent.
func (o *opener) report(feature, detail string, err error) {
	st := FeatureStatus{Feature: feature, OK: err == nil, Detail: detail, Err: err}
	if err != nil {
		var ae *AbsentError
		if errors.As(err, &ae) {
			st.Detail, st.Code = ae.Reason, cmp.Or(ae.Code, AbsentCannotUse)
		} else {
			st.Detail, st.Code = err.Error(), AbsentCannotUse
			st.Err = &AbsentError{Feature: feature, Code: AbsentCannotUse, Reason: "cannot be used", Err: err}
		}
		o.log.Warn("board: feature absent", "feature", feature, "err", st.Err)
	} else {
		o.log.Info("board: feature ready", "feature", feature, "detail", detail)
	}
	o.b.Status = append(o.b.Status, st)
}

// pin finds the GPIO pin name (def when empty; "none" turns the feature off). GPIO: one
// host.Init for the three pins; its failure makes each of them absent.
func (o *opener) pin(feature, name, def string) (gpio.PinIO, error) {
	if name == "" {
		name = def
	}
	if name == "none" {
		return nil, &AbsentError{Feature: feature, Code: AbsentOff, Reason: "turned off in the configuration"}
	}
	if o.gpioErr != nil {
		return nil, o.gpioErr
	}
	if _, err := host.Init(); err != nil {
		o.gpioErr = &AbsentError{Feature: feature, Code: AbsentNoGPIO, Reason: "GPIO drivers failed to start", Err: err}
		return nil, o.gpioErr
	}
	p := gpioreg.ByName(name)
	if p == nil {
		reason, code := fmt.Sprintf("no GPIO pin named %q", name), AbsentNoPin
		if chips, _ := filepath.Glob("/dev/gpiochip*"); len(chips) == 0 {
			reason += " (no /dev/gpiochip*: not a Raspberry Pi, or the GPIO device is hidden from the service)"
			code = AbsentNoGPIO
		}
		return nil, &AbsentError{Feature: feature, Code: code, Reason: reason}
	}
	return p, nil
}

// buttons opens the push-to-talk and export buttons.
func (o *opener) buttons() {
	bopts := ButtonOptions{ActiveHigh: o.cfg.ButtonsActiveHigh, Debounce: o.cfg.Debounce}
	for _, bt := range []struct {
		feature, name, def string
		dst                *Button
	}{
		{FeaturePushToTalk, o.cfg.PushToTalkPin, "GPIO17", &o.b.PushToTalk},
		{FeatureExportButton, o.cfg.ExportPin, "GPIO22", &o.b.ExportButton},
	} {
		p, err := o.pin(bt.feature, bt.name, bt.def)
		if err != nil {
			o.report(bt.feature, "", err)
			continue
		}
		btn, err := NewGPIOButton(p, bopts)
		if err != nil {
			o.report(bt.feature, "", err)
			continue
		}
		o.b.pins = append(o.b.pins, p)
		*bt.dst = btn
		o.report(bt.feature, fmt.Sprintf("button on %s", p.Name()), nil)
	}
}

// led opens the status LED.
func (o *opener) led() {
	p, err := o.pin(FeatureLED, o.cfg.LEDPin, "GPIO27")
	if err != nil {
		o.report(FeatureLED, "", err)
		return
	}
	led, err := NewGPIOLED(p, o.cfg.LEDActiveLow)
	if err != nil {
		o.report(FeatureLED, "", err)
		return
	}
	o.b.pins = append(o.b.pins, p)
	o.b.LED = led
	o.report(FeatureLED, fmt.Sprintf("LED on %s", p.Name()), nil)
}

// mic finds the microphone.
func (o *opener) mic(ctx context.Context) {
	mic, err := openMic(ctx, o.cfg)
	if err != nil {
		o.report(FeatureMic, "", err)
		return
	}
	o.b.Mic = mic
	o.report(FeatureMic, "capturing from "+mic.String(), nil)
}

// volumes watches the USB sticks' mount points; a bad glob is Open's error.
func (o *opener) volumes() error {
	if len(o.cfg.MountGlobs) == 1 && o.cfg.MountGlobs[0] == "none" {
		o.report(FeatureVolumes, "", &AbsentError{Feature: FeatureVolumes, Code: AbsentOff, Reason: "turned off in the configuration"})
		return nil
	}
	v, err := NewGlobVolumes(VolumeOptions{Globs: o.cfg.MountGlobs, Interval: o.cfg.PollInterval, RequireMount: true})
	if err != nil {
		return err
	}
	o.b.Volumes = v
	detail := "watching " + strings.Join(v.Globs(), " and ")
	if _, err := os.Stat("/media"); err != nil {
		detail += " (/media does not exist yet)"
	}
	o.report(FeatureVolumes, detail, nil)
	return nil
}

func openMic(ctx context.Context, cfg Config) (Mic, error) {
	switch cfg.Mic {
	case "none":
		return nil, &AbsentError{Feature: FeatureMic, Code: AbsentOff, Reason: "turned off in the configuration"}
	case "alsa":
		m, err := NewALSAMic(cfg.MicDevice)
		if err != nil {
			return nil, err
		}
		return m, probe(ctx, m)
	case "arecord":
		dev := cfg.MicDevice
		if dev == "" {
			card, d, err := firstCaptureDevice()
			if err != nil {
				return nil, err
			}
			dev = fmt.Sprintf("plughw:%d,%d", card, d)
		}
		return NewArecordMic(ArecordOptions{Device: dev})
	case "", "auto":
		var dev string
		if cfg.MicDevice == "" {
			card, d, err := firstCaptureDevice()
			if err != nil {
				return nil, err
			}
			dev = fmt.Sprintf("hw:%d,%d", card, d)
		} else {
			dev = cfg.MicDevice
		}
		if m, err := NewALSAMic(dev); err == nil {
			if err := probe(ctx, m); err == nil {
				return m, nil
			}
		}
		// The device speaks no S16_LE, or the name is an ALSA plugin: let arecord convert.
		if strings.HasPrefix(dev, "hw:") {
			dev = "plug" + dev
		}
		return NewArecordMic(ArecordOptions{Device: dev})
	}
	return nil, fmt.Errorf("board: unknown Mic %q", cfg.Mic)
}

// probe opens and closes m once, so that a device that cannot capture is found at start.
func probe(ctx context.Context, m *ALSAMic) error {
	c, err := m.Open(ctx)
	if err != nil {
		return err
	}
	return c.Close()
}

// Close releases the GPIO pins (they stop driving the LED and detecting edges).
func (b *Board) Close() error {
	var errs []error
	for _, p := range b.pins {
		if err := p.Halt(); err != nil {
			errs = append(errs, fmt.Errorf("board: release %s: %w", p.Name(), err))
		}
	}
	b.pins = nil
	return errors.Join(errs...)
}
