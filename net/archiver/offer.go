package archiver

import (
	"errors"
	"fmt"
	"net/netip"
	"strings"

	"github.com/pion/webrtc/v4"
)

// MaxOfferCandidates bounds the ICE candidates an offer may list: the box runs
// connectivity checks against each (a phone lists a handful; a browser on a busy laptop a
// dozen or two).
const MaxOfferCandidates = 32

// checkOffer refuses, before anything is made for it, an offer SDP the box cannot answer:
// one that does not parse, that offers no DataChannel (an "application" section), that
// lacks the DTLS fingerprint or the ICE credentials, or lists more than MaxOfferCandidates
// candidates. Errors wrap ErrBadOffer.
func checkOffer(text string) error {
	desc := webrtc.SessionDescription{Type: webrtc.SDPTypeOffer, SDP: text}
	parsed, err := desc.Unmarshal()
	if err != nil {
		return fmt.Errorf("%w: %w", ErrBadOffer, err)
	}
	_, fingerprint := parsed.Attribute("fingerprint")
	_, ufrag := parsed.Attribute("ice-ufrag")
	_, pwd := parsed.Attribute("ice-pwd")
	application, candidates := false, 0
	for _, m := range parsed.MediaDescriptions {
		if m.MediaName.Media == "application" {
			application = true
		}
		for _, a := range m.Attributes {
			switch a.Key {
			case "fingerprint":
				fingerprint = true
			case "ice-ufrag":
				ufrag = true
			case "ice-pwd":
				pwd = true
			case "candidate":
				candidates++
			}
		}
	}
	switch {
	case !application:
		return fmt.Errorf("%w: no DataChannel section", ErrBadOffer)
	case !fingerprint:
		return fmt.Errorf("%w: no DTLS fingerprint", ErrBadOffer)
	case !ufrag || !pwd:
		return fmt.Errorf("%w: no ICE credentials", ErrBadOffer)
	case candidates > MaxOfferCandidates:
		return fmt.Errorf("%w: %d ICE candidates (at most %d)", ErrBadOffer, candidates, MaxOfferCandidates)
	}
	return nil
}

// isOfferRefused reports whether pion refused the offer's content (rtc.Answer's error): the
// client's fault, not the box's.
func isOfferRefused(err error) bool {
	for _, e := range []error{
		webrtc.ErrSessionDescriptionNoFingerprint, webrtc.ErrSessionDescriptionInvalidFingerprint,
		webrtc.ErrSessionDescriptionConflictingFingerprints, webrtc.ErrSessionDescriptionMissingIceUfrag,
		webrtc.ErrSessionDescriptionMissingIcePwd, webrtc.ErrSessionDescriptionConflictingIceUfrag,
		webrtc.ErrSessionDescriptionConflictingIcePwd,
	} {
		if errors.Is(err, e) {
			return true
		}
	}
	return false
}

// candidateAddrField is the index of the connection address in a candidate attribute's
// value (RFC 8839: foundation, component, transport, priority, address, port, "typ", type).
const candidateAddrField = 4

// filterCandidates removes from an offer SDP every candidate whose address is outside
// subnets: the box would run ICE checks (STUN probes) against it on a stranger's behalf.
// An mDNS name (".local", which pion resolves on the LAN) stays; any other name (pion
// would ask DNS) and an unreadable candidate go. Every other line is kept as it is. It
// returns the SDP and the addresses removed. An offer left with no candidate still
// connects: the phone's own checks reach the box, which learns its address from them.
func filterCandidates(sdp string, subnets []netip.Prefix) (string, []string) {
	var out strings.Builder
	var dropped []string
	for line := range strings.Lines(sdp) {
		value, ok := strings.CutPrefix(strings.TrimRight(line, "\r\n"), "a=candidate:")
		if !ok {
			out.WriteString(line)
			continue
		}
		fields := strings.Fields(value)
		addr := ""
		if len(fields) > candidateAddrField {
			addr = fields[candidateAddrField]
		}
		if candidateAllowed(addr, subnets) {
			out.WriteString(line)
		} else {
			dropped = append(dropped, addr)
		}
	}
	return out.String(), dropped
}

// candidateAllowed reports whether the box may check a candidate at addr: an mDNS name, or
// an IP address inside subnets.
func candidateAllowed(addr string, subnets []netip.Prefix) bool {
	if strings.HasSuffix(strings.ToLower(addr), ".local") {
		return true
	}
	a, err := netip.ParseAddr(addr)
	if err != nil {
		return false
	}
	a = a.Unmap().WithZone("")
	for _, p := range subnets {
		if p.Contains(a) {
			return true
		}
	}
	return false
}
