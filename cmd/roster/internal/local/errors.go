package local

import (
	"errors"
	"fmt"
	"net/http"
)

// Error is a refusal with the HTTP status Consul answers it with. The
// messages are Consul's, so clients that match on them keep working.
type Error struct {
	// Code is the HTTP status: 400 bad input, 404 unknown ID, 500 otherwise.
	Code int
	Msg  string
}

func (e *Error) Error() string { return e.Msg }

// HTTPStatus is the status to answer with. Packages that may not import
// this one (httpapi) detect it with errors.As on an interface
// { HTTPStatus() int }.
func (e *Error) HTTPStatus() int { return e.Code }

func badRequest(format string, args ...any) error {
	return &Error{Code: http.StatusBadRequest, Msg: fmt.Sprintf(format, args...)}
}

func notFound(format string, args ...any) error {
	return &Error{Code: http.StatusNotFound, Msg: fmt.Sprintf(format, args...)}
}

// StatusCode maps an error of this package to the HTTP status Consul uses
// for it: 400, 404, or 500 for anything else (including disk errors).
func StatusCode(err error) int {
	var e *Error
	if errors.As(err, &e) {
		return e.Code
	}
	return http.StatusInternalServerError
}

func unknownService(id string) error {
	return notFound("Unknown service ID %q. Ensure that the service ID is passed, not the service name.", id)
}

func unknownCheck(id string) error {
	return notFound("Unknown check ID %q. Ensure that the check ID is passed, not the check name.", id)
}
