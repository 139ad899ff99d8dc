package rtc

import (
	"context"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/pion/dtls/v3"
	"github.com/pion/webrtc/v4"

	"github.com/chattorrent/chattorrent/store/testenv"
)

func TestDTLSCipherChoice(t *testing.T) {
	for _, c := range []struct {
		pref       string
		aesHW      bool
		wantChaCha bool
	}{
		{CipherAuto, false, true}, // a Pi without AES instructions
		{CipherAuto, true, false}, // x86 with AES-NI, Pi 5 (ARMv8 crypto extensions)
		{CipherChaCha, true, true},
		{CipherChaCha, false, true},
		{CipherAES, false, false},
		{CipherAES, true, false},
	} {
		s, err := dtlsCipherSuites(c.pref, c.aesHW)
		if err != nil {
			t.Fatal(err)
		}
		if !c.wantChaCha {
			if s != nil {
				t.Errorf("%q, AES %v: %v, want pion's defaults (nil)", c.pref, c.aesHW, s)
			}
			continue
		}
		if len(s) < 4 || s[0] != dtls.TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305_SHA256 {
			t.Errorf("%q, AES %v: %v, want ChaCha20 (ECDSA) first", c.pref, c.aesHW, s)
		}
		// Browsers must still be able to agree on AES-GCM (RFC 8827 mandates it).
		if !slices.Contains(s, dtls.TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256) {
			t.Errorf("%q: AES-128-GCM missing from %v", c.pref, s)
		}
	}
	if _, err := dtlsCipherSuites("rot13", false); err == nil {
		t.Error("an unknown preference was accepted")
	}
	if _, err := NewAPI(Options{DTLSCipher: "rot13"}); err == nil {
		t.Error("NewAPI accepted an unknown preference")
	}
	// 32-bit ARM (Pi Zero, 1, 2 and Raspberry Pi OS 32-bit) never counts as AES hardware.
	if runtime.GOARCH == "arm" && hasAESHardware() {
		t.Error("hasAESHardware on GOARCH=arm")
	}
}

// TestUDPMuxOnePort: the box's pion, given a UDP mux, answers several peers on one UDP
// port: every candidate it offers and every pair it selects use the mux's port. Without
// the mux each connection opens its own socket on its own ephemeral port. The box also
// negotiates the DTLS suite its preference puts first.
func TestUDPMuxOnePort(t *testing.T) {
	testenv.NeedLoopbackOnly(t)
	mux, err := ListenUDPMux(0, 1<<20, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer mux.Close()
	if mux.ReadBuffer < 1<<20 {
		t.Logf("receive buffer granted: %d bytes (not root?)", mux.ReadBuffer)
	}
	port := strconv.Itoa(mux.Port())
	boxAPI, err := NewAPI(Options{IncludeLoopback: true, UDPMux: mux, DTLSCipher: CipherChaCha})
	if err != nil {
		t.Fatal(err)
	}
	phoneAPI, err := NewAPI(Options{IncludeLoopback: true})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	const peers = 4
	for i := range peers {
		pcA, dcA, offer, err := Offer(ctx, phoneAPI)
		if err != nil {
			t.Fatal(err)
		}
		defer pcA.Close()
		pcB, incoming, answer, err := Answer(ctx, boxAPI, offer)
		if err != nil {
			t.Fatal(err)
		}
		defer pcB.Close()
		n := 0
		for line := range strings.SplitSeq(answer, "\n") {
			if !strings.HasPrefix(line, "a=candidate:") {
				continue
			}
			n++
			// a=candidate:<foundation> <component> <proto> <prio> <addr> <port> typ host
			if f := strings.Fields(line); len(f) < 6 || f[5] != port {
				t.Errorf("peer %d: the box offers %q, not port %s", i, strings.TrimSpace(line), port)
			}
		}
		if n == 0 {
			t.Fatalf("peer %d: no candidates in the box's answer", i)
		}
		if err := Accept(pcA, answer); err != nil {
			t.Fatal(err)
		}
		ca, err := Open(ctx, dcA)
		if err != nil {
			t.Fatal(err)
		}
		defer ca.Close()
		var dcB *webrtc.DataChannel
		select {
		case dcB = <-incoming:
		case <-ctx.Done():
			t.Fatal("no data channel on the box")
		}
		cb, err := Open(ctx, dcB)
		if err != nil {
			t.Fatal(err)
		}
		defer cb.Close()
		if err := ca.Send(ctx, []byte(`"ping"`)); err != nil {
			t.Fatal(err)
		}
		if m, err := cb.Recv(ctx); err != nil || string(m) != `"ping"` {
			t.Fatalf("peer %d: got %q, %v", i, m, err)
		}
		pair, err := pcB.SCTP().Transport().ICETransport().GetSelectedCandidatePair()
		if err != nil || pair == nil {
			t.Fatalf("peer %d: no selected pair: %v", i, err)
		}
		if strconv.Itoa(int(pair.Local.Port)) != port {
			t.Errorf("peer %d: the box's selected candidate uses port %d, want the mux's %s", i, pair.Local.Port, port)
		}
		cipher := ""
		for _, s := range pcB.GetStats() {
			if ts, ok := s.(webrtc.TransportStats); ok && ts.DTLSCipher != "" {
				cipher = ts.DTLSCipher
			}
		}
		if !strings.Contains(cipher, "CHACHA20") {
			t.Errorf("peer %d: DTLS cipher %q, want ChaCha20-Poly1305 (the box offers it first)", i, cipher)
		}
	}
}
