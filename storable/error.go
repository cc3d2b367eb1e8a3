package storable

import "fmt"

// Error returns err when its message is storable as it is ([Valid]) and at
// most [MaxErrorBytes] long, and otherwise a [*SanitizedError] wrapping err
// whose message is Text(err.Error(), MaxErrorBytes). errors.Is, errors.As and
// errors.AsType see err through the wrapper, so classification, River's
// JobCancel and JobSnooze detection and callers' checks work unchanged.
// Error(nil) returns nil.
func Error(err error) error {
	if err == nil {
		return nil
	}
	msg := err.Error()
	safe := Text(msg, MaxErrorBytes)
	if safe == msg {
		return err
	}
	return &SanitizedError{Err: err, msg: safe}
}

// SanitizedError is an error whose original message PostgreSQL could not
// store, or that was longer than [MaxErrorBytes]; see [Error].
type SanitizedError struct {
	// Err is the original error.
	Err error
	msg string
}

// Error returns the sanitised message: valid UTF-8, no NUL, at most
// [MaxErrorBytes] bytes.
func (e *SanitizedError) Error() string { return e.msg }

// Unwrap returns the original error.
func (e *SanitizedError) Unwrap() error { return e.Err }

// Panic returns v when its text (fmt.Sprint(v), which River stores as the
// attempt's error) is storable as it is and at most [MaxErrorBytes] long, and
// otherwise a [*PanicValue] holding v whose text is sanitised by [Text]. A
// recover that re-panics with Panic(v) lets River store the panic while
// callers further up still get the original value.
func Panic(v any) any {
	text := fmt.Sprint(v)
	safe := Text(text, MaxErrorBytes)
	if safe == text {
		return v
	}
	return &PanicValue{Value: v, text: safe}
}

// PanicValue is a panic value whose text PostgreSQL could not store, or that
// was longer than [MaxErrorBytes]; see [Panic]. Its text (String, Error, and
// so fmt's %v) is the sanitised one.
type PanicValue struct {
	// Value is the original panic value.
	Value any
	text  string
}

// String returns the sanitised text of the panic value.
func (p *PanicValue) String() string { return p.text }

// Error returns the sanitised text of the panic value, as String does, so a
// PanicValue is an error too (fmt prefers Error to String).
func (p *PanicValue) Error() string { return p.text }

// Unwrap returns the original panic value when it is an error, so errors.Is
// and errors.As see it; nil otherwise.
func (p *PanicValue) Unwrap() error {
	err, _ := p.Value.(error)
	return err
}
