//go:build !linux

package board

import (
	"context"
	"errors"
)

// Open implements Mic: ALSA exists on linux only (the box); elsewhere (a developer's Mac)
// the microphone reports itself absent.
func (m *ALSAMic) Open(ctx context.Context) (Capture, error) {
	return nil, errors.New("board: ALSA capture works on linux only")
}

// firstCaptureDevice: no ALSA outside linux.
func firstCaptureDevice() (card, dev uint, err error) {
	return 0, 0, &AbsentError{Feature: FeatureMic, Code: AbsentNoSound, Reason: "no ALSA (not linux)"}
}
