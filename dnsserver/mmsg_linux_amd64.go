package dnsserver

// Linux system call numbers of recvmmsg(2) and sendmmsg(2) on amd64
// (package syscall predates sendmmsg).
const (
	sysRecvmmsg = 299
	sysSendmmsg = 307
)
