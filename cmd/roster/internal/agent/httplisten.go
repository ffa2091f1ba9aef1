package agent

import (
	"net"
)

// The HTTP API's accept queues. A listening socket queues connections the
// kernel has completed until the process accepts them, up to the listen
// backlog, which Linux caps at net.core.somaxconn (4096 by default; Go
// asks for exactly that). Past it the kernel drops the handshake and the
// client retries after a one-second SYN timeout, then 3 s, 7 s...: ten
// thousand watchers reconnecting at once (an agent restart) overflow one
// queue while the agent is busy answering the first thousands, and the
// last of them wait seconds for nothing but a retransmit. So on Linux each
// HTTP address is bound by httpAcceptQueues sockets sharing the port
// (SO_REUSEPORT): the kernel spreads new connections over their queues,
// each served by its own accept loop, without touching system settings.
// Other systems bind one socket.
const httpAcceptQueues = 4

// listenHTTP binds addr for the HTTP API: primary is the socket whose
// address the agent reports; extra are the sockets sharing its port.
func listenHTTP(addr string) (primary net.Listener, extra []net.Listener, err error) {
	ls, err := listenShared(addr, httpAcceptQueues)
	if err != nil {
		return nil, nil, err
	}
	return ls[0], ls[1:], nil
}

// closeAll closes listeners (after a failed bind).
func closeAll(ls []net.Listener) {
	for _, l := range ls {
		l.Close()
	}
}
