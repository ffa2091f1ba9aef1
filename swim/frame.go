package swim

import (
	"crypto/aes"
	"crypto/cipher"
	"encoding/base64"
	"errors"
	"fmt"
	"io"
)

// framer wraps packet bodies in the versioned, labelled (and optionally
// encrypted) header described in wire.go, and unwraps received packets.
// It is owned by one core, so it needs no locking; the nonce source is the
// caller's (crypto/rand in the shell, a seeded stream in simulations, where
// nonce uniqueness only matters per key and run).
type framer struct {
	label string
	aead  cipher.AEAD // nil: plaintext
	nonce io.Reader
}

// Errors a received frame can fail with; the core counts each kind.
var (
	errBadVersion    = errors.New("swim: unsupported wire version")
	errLabelMismatch = errors.New("swim: packet from another cluster label")
	errNotEncrypted  = errors.New("swim: plaintext packet but encryption is required")
	errEncrypted     = errors.New("swim: encrypted packet but no key is configured")
	errDecrypt       = errors.New("swim: packet failed authentication (wrong key?)")
)

func newFramer(label string, key []byte, nonce io.Reader) (*framer, error) {
	f := &framer{label: label, nonce: nonce}
	if len(key) == 0 {
		return f, nil
	}
	block, err := aes.NewCipher(key)
	if err != nil {
		return nil, fmt.Errorf("swim: encryption key: %w", err)
	}
	if f.aead, err = cipher.NewGCM(block); err != nil {
		return nil, fmt.Errorf("swim: encryption key: %w", err)
	}
	return f, nil
}

// headerBytes is the size of the header this framer writes.
func (f *framer) headerBytes() int { return headerFixedBytes + len(f.label) }

// overheadBytes is what sealing adds on top of the body.
func (f *framer) overheadBytes() int {
	n := f.headerBytes()
	if f.aead != nil {
		n += f.aead.NonceSize() + f.aead.Overhead()
	}
	return n
}

// seal frames body into a new packet.
func (f *framer) seal(body []byte) ([]byte, error) {
	out := make([]byte, 0, f.overheadBytes()+len(body))
	var flags byte
	if f.aead != nil {
		flags |= flagEncrypted
	}
	out = append(out, wireVersion, flags, byte(len(f.label)))
	out = append(out, f.label...)
	if f.aead == nil {
		return append(out, body...), nil
	}
	header := len(out)
	nonce := out[header : header+f.aead.NonceSize()]
	out = out[:header+len(nonce)]
	if _, err := io.ReadFull(f.nonce, nonce); err != nil {
		return nil, fmt.Errorf("swim: drawing a nonce: %w", err)
	}
	return f.aead.Seal(out, nonce, body, out[:header]), nil
}

// open checks a received packet's version and label, decrypts it if
// needed, and returns the body.
func (f *framer) open(pkt []byte) ([]byte, error) {
	if len(pkt) < headerFixedBytes {
		return nil, errTruncated
	}
	if pkt[0] != wireVersion {
		return nil, fmt.Errorf("%w %d (this node speaks %d)", errBadVersion, pkt[0], wireVersion)
	}
	flags, labelLen := pkt[1], int(pkt[2])
	if len(pkt) < headerFixedBytes+labelLen {
		return nil, errTruncated
	}
	if string(pkt[headerFixedBytes:headerFixedBytes+labelLen]) != f.label {
		return nil, errLabelMismatch
	}
	header := headerFixedBytes + labelLen
	encrypted := flags&flagEncrypted != 0
	switch {
	case f.aead == nil && encrypted:
		return nil, errEncrypted
	case f.aead != nil && !encrypted:
		return nil, errNotEncrypted
	case f.aead == nil:
		return pkt[header:], nil
	}
	ns := f.aead.NonceSize()
	if len(pkt) < header+ns+f.aead.Overhead() {
		return nil, errTruncated
	}
	body, err := f.aead.Open(nil, pkt[header:header+ns], pkt[header+ns:], pkt[:header])
	if err != nil {
		return nil, errDecrypt
	}
	return body, nil
}

// ParseKey decodes a base64 encryption key as printed by `consul keygen`
// (and `roster keygen`): 16, 24 or 32 bytes selecting AES-128/192/256.
func ParseKey(s string) ([]byte, error) {
	key, err := base64.StdEncoding.DecodeString(s)
	if err != nil {
		return nil, fmt.Errorf("swim: encryption key is not valid base64: %w", err)
	}
	if err := checkKey(key); err != nil {
		return nil, err
	}
	return key, nil
}

func checkKey(key []byte) error {
	switch len(key) {
	case 0, 16, 24, 32:
		return nil
	}
	return fmt.Errorf("swim: encryption key has %d bytes; use 16, 24 or 32 (e.g. the output of keygen, 32 bytes base64)", len(key))
}
