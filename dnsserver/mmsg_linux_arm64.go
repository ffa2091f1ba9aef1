package dnsserver

// Linux system call numbers of recvmmsg(2) and sendmmsg(2) on arm64.
const (
	sysRecvmmsg = 243
	sysSendmmsg = 269
)
