package board

import (
	"fmt"
	"strconv"
	"strings"
)

// ALSAMic captures from an ALSA hardware device directly (/dev/snd/pcmC<card>D<device>c),
// in pure Go (github.com/gen2brain/alsa): no ALSA plugins, so the device's own formats. It
// asks for 16 kHz mono S16_LE and takes 48, 44.1 kHz or stereo when that is all the device
// offers, converting in Go. Devices without S16_LE need ArecordMic (plughw converts).
type ALSAMic struct {
	card, device uint
}

// NewALSAMic opens nothing yet; it checks that device ("hw:1,0"; "" for the first card with
// a capture device, as listed in /proc/asound/pcm) exists.
func NewALSAMic(device string) (*ALSAMic, error) {
	if device == "" {
		card, dev, err := firstCaptureDevice()
		if err != nil {
			return nil, err
		}
		return &ALSAMic{card: card, device: dev}, nil
	}
	card, dev, err := parseHW(device)
	if err != nil {
		return nil, err
	}
	return &ALSAMic{card: card, device: dev}, nil
}

// parseHW reads "hw:C,D" (also "plughw:C,D", taken as the hardware device).
func parseHW(s string) (card, dev uint, err error) {
	rest, ok := strings.CutPrefix(s, "hw:")
	if !ok {
		rest, ok = strings.CutPrefix(s, "plughw:")
	}
	c, d, ok2 := strings.Cut(rest, ",")
	if !ok2 {
		c, d = rest, "0"
	}
	ci, err1 := strconv.ParseUint(c, 10, 32)
	di, err2 := strconv.ParseUint(d, 10, 32)
	if !ok || err1 != nil || err2 != nil {
		return 0, 0, fmt.Errorf("board: ALSA device %q: want hw:CARD,DEVICE with numbers", s)
	}
	return uint(ci), uint(di), nil
}

// String implements Mic.
func (m *ALSAMic) String() string { return fmt.Sprintf("hw:%d,%d", m.card, m.device) }
