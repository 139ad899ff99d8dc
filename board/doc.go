// Package board is ChatTorrent's hardware layer: a push-to-talk and an export button and a
// status LED on GPIO, a USB microphone, and USB sticks mounted under /media.
//
// Each piece is a small interface (Button, LED, Mic, Volumes) with a real implementation
// behind it and a fake in board/boardtest:
//
//   - Button: GPIOButton on a periph.io pin (gpioreg.ByName, e.g. "GPIO17"), input with the
//     internal pull-up and both edges, debounced; pressed is low (the button shorts the pin
//     to GND). Device: /dev/gpiochip* (the periph gpioioctl driver) or /dev/gpiomem.
//   - LED: GPIOLED on a periph.io output pin (default "GPIO27", LED + 330 Ω resistor to GND,
//     lit when high). Blinker plays a Pattern on it.
//   - Mic: ALSAMic (pure Go, direct /dev/snd/pcmC*D*c hardware devices) or ArecordMic (runs
//     the arecord tool: ALSA plugins such as plughw or dsnoop). Both deliver 16-bit mono PCM at
//     SampleRate (16 kHz), converting in Go when the device only offers 44.1/48 kHz or stereo.
//   - Volumes: GlobVolumes polls mount-point globs (default /media/*/* and /media/*) and
//     reports newly mounted, writable sticks.
//
// Export writes rooms' histories and files to a new dated folder on a stick, each file synced.
// Open detects what exists; a missing GPIO chip, microphone or mount point is reported once
// (Board.Status, an *AbsentError) and the rest works.
//
// Voice notes are WAV (RIFF, PCM 16-bit mono, 16 kHz): WAVBytesPerSecond = 32,000 bytes per
// second plus a 44-byte header (a 60 s note is 1,920,044 bytes). Every phone browser plays
// it. No pure-Go Ogg/Opus encoder could be obtained for the build (none is served by the
// module proxy this project uses), and cgo is not an option, so WAV is the choice.
package board
