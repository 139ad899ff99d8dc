package board

import (
	"bufio"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"math"
	"time"
)

// WAVHeaderSize is the size of the header WriteWAV writes before the samples.
const WAVHeaderSize = 44

// WAVBytesPerSecond is what a second of a Mic's voice note costs as WAV: SampleRate samples of
// 2 bytes, 32,000 bytes/s (1.92 MB a minute), plus WAVHeaderSize once. Measured by
// TestWAVBytesPerSecond, which encodes 10 s and finds 320,044 bytes.
const WAVBytesPerSecond = SampleRate * 2

// ErrBadWAV is wrapped by ReadWAV's errors for input that is not a PCM 16-bit WAV file.
var ErrBadWAV = errors.New("not a PCM 16-bit WAV file")

// WriteWAV writes r as a WAV file (RIFF, PCM, 16-bit, mono) to w, at most max long
// (max <= 0: all of it; a longer recording is cut). It returns the bytes written.
func WriteWAV(w io.Writer, r *Recording, max time.Duration) (int64, error) {
	if r == nil || r.SampleRate <= 0 {
		return 0, errors.New("board: write WAV: no recording")
	}
	samples := r.Samples
	if max > 0 {
		if n := int(int64(max) * int64(r.SampleRate) / int64(time.Second)); n < len(samples) {
			samples = samples[:n]
		}
	}
	if limit := (math.MaxUint32 - 36) / 2; len(samples) > limit {
		samples = samples[:limit]
	}
	data := uint32(len(samples) * 2)
	var h [WAVHeaderSize]byte
	copy(h[0:], "RIFF")
	binary.LittleEndian.PutUint32(h[4:], 36+data)
	copy(h[8:], "WAVE")
	copy(h[12:], "fmt ")
	binary.LittleEndian.PutUint32(h[16:], 16)                     // fmt chunk size
	binary.LittleEndian.PutUint16(h[20:], 1)                      // PCM
	binary.LittleEndian.PutUint16(h[22:], 1)                      // mono
	binary.LittleEndian.PutUint32(h[24:], uint32(r.SampleRate))   // sample rate
	binary.LittleEndian.PutUint32(h[28:], uint32(r.SampleRate*2)) // byte rate
	binary.LittleEndian.PutUint16(h[32:], 2)                      // block align
	binary.LittleEndian.PutUint16(h[34:], 16)                     // bits per sample
	copy(h[36:], "data")
	binary.LittleEndian.PutUint32(h[40:], data)

	bw := bufio.NewWriterSize(w, 32<<10)
	n, err := bw.Write(h[:])
	total := int64(n)
	if err != nil {
		return total, fmt.Errorf("board: write WAV: %w", err)
	}
	var b [2]byte
	for _, s := range samples {
		binary.LittleEndian.PutUint16(b[:], uint16(s))
		n, err := bw.Write(b[:])
		total += int64(n)
		if err != nil {
			return total, fmt.Errorf("board: write WAV: %w", err)
		}
	}
	if err := bw.Flush(); err != nil {
		return total, fmt.Errorf("board: write WAV: %w", err)
	}
	return total, nil
}

// ReadWAV reads a PCM 16-bit WAV file of any rate and channel count and returns it as a mono
// Recording at the file's rate (channels averaged). Chunks other than "fmt " and "data" are
// skipped; a data chunk longer than the file (a stream cut short) is read to its end.
func ReadWAV(r io.Reader) (*Recording, error) {
	var riff [12]byte
	if _, err := io.ReadFull(r, riff[:]); err != nil {
		return nil, fmt.Errorf("board: read WAV: %w: %w", ErrBadWAV, err)
	}
	if string(riff[0:4]) != "RIFF" || string(riff[8:12]) != "WAVE" {
		return nil, fmt.Errorf("board: read WAV: %w: no RIFF/WAVE header", ErrBadWAV)
	}
	var rate, channels int
	for {
		var ch [8]byte
		if _, err := io.ReadFull(r, ch[:]); err != nil {
			return nil, fmt.Errorf("board: read WAV: %w: no data chunk: %w", ErrBadWAV, err)
		}
		size := int64(binary.LittleEndian.Uint32(ch[4:]))
		switch string(ch[0:4]) {
		case "fmt ":
			if size < 16 {
				return nil, fmt.Errorf("board: read WAV: %w: fmt chunk of %d bytes", ErrBadWAV, size)
			}
			f := make([]byte, size+size%2)
			if _, err := io.ReadFull(r, f); err != nil {
				return nil, fmt.Errorf("board: read WAV: %w: %w", ErrBadWAV, err)
			}
			format := binary.LittleEndian.Uint16(f[0:])
			channels = int(binary.LittleEndian.Uint16(f[2:]))
			rate = int(binary.LittleEndian.Uint32(f[4:]))
			bits := binary.LittleEndian.Uint16(f[14:])
			if format == 0xFFFE && size >= 26 { // WAVE_FORMAT_EXTENSIBLE: the sub-format's first bytes
				format = binary.LittleEndian.Uint16(f[24:])
			}
			if format != 1 || bits != 16 || channels < 1 || rate < 1 {
				return nil, fmt.Errorf("board: read WAV: %w: format %d, %d bits, %d channels, %d Hz",
					ErrBadWAV, format, bits, channels, rate)
			}
		case "data":
			if channels == 0 {
				return nil, fmt.Errorf("board: read WAV: %w: data before fmt", ErrBadWAV)
			}
			raw, err := io.ReadAll(io.LimitReader(r, size))
			if err != nil {
				return nil, fmt.Errorf("board: read WAV: %w", err)
			}
			in := make([]int16, len(raw)/2)
			for i := range in {
				in[i] = int16(binary.LittleEndian.Uint16(raw[2*i:]))
			}
			conv, err := NewConverter(rate, channels, rate)
			if err != nil {
				return nil, err
			}
			return &Recording{SampleRate: rate, Samples: conv.Convert(nil, in)}, nil
		default:
			if _, err := io.CopyN(io.Discard, r, size+size%2); err != nil {
				return nil, fmt.Errorf("board: read WAV: %w: %w", ErrBadWAV, err)
			}
		}
	}
}

// Resample returns r converted to rate (see Converter); r itself when it already is.
func (r *Recording) Resample(rate int) (*Recording, error) {
	if r.SampleRate == rate {
		return r, nil
	}
	c, err := NewConverter(r.SampleRate, 1, rate)
	if err != nil {
		return nil, err
	}
	return &Recording{SampleRate: rate, Samples: c.Convert(nil, r.Samples)}, nil
}
