package rtc

import (
	"net"

	"golang.org/x/sys/unix"
)

// forceReadBuffer sets SO_RCVBUFFORCE (needs CAP_NET_ADMIN); false when refused.
func forceReadBuffer(c *net.UDPConn, size int) bool {
	raw, err := c.SyscallConn()
	if err != nil {
		return false
	}
	var serr error
	if err := raw.Control(func(fd uintptr) {
		serr = unix.SetsockoptInt(int(fd), unix.SOL_SOCKET, unix.SO_RCVBUFFORCE, size)
	}); err != nil {
		return false
	}
	return serr == nil
}

// readBufferSize returns SO_RCVBUF as the kernel reports it, 0 when unknown.
func readBufferSize(c *net.UDPConn) int {
	raw, err := c.SyscallConn()
	if err != nil {
		return 0
	}
	n := 0
	_ = raw.Control(func(fd uintptr) {
		v, err := unix.GetsockoptInt(int(fd), unix.SOL_SOCKET, unix.SO_RCVBUF)
		if err == nil {
			n = v
		}
	})
	return n
}
