//go:build !linux

package rtc

import "net"

func forceReadBuffer(*net.UDPConn, int) bool { return false }

func readBufferSize(*net.UDPConn) int { return 0 }
