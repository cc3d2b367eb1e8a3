package storable_test

import (
	"errors"
	"fmt"
	"io/fs"

	"github.com/rebound-queue/rebound/storable"
)

// An upstream's answer with a NUL and bytes that are not UTF-8 becomes an
// error PostgreSQL can store; the original stays reachable.
func ExampleError() {
	orig := fmt.Errorf("HTTP 500: bad\x00byte \xff\xfe here: %w", fs.ErrPermission)
	err := storable.Error(orig)
	fmt.Println(err)
	fmt.Println(errors.Is(err, fs.ErrPermission))
	// Output:
	// HTTP 500: bad�byte �� here: permission denied
	// true
}

func ExampleText() {
	fmt.Println(storable.Text("a\x00b\xff", 0))
	fmt.Println(storable.Text("a long error message", 12))
	// Output:
	// a�b�
	// a long er…
}

func ExampleCheckJSON() {
	err := storable.CheckJSON([]byte(`{"body": {"name": "a\u0000b"}}`), "args")
	fmt.Println(err)
	// Output:
	// args.body.name: contains a NUL character (\u0000), which PostgreSQL cannot store
}
