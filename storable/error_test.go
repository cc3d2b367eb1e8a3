package storable_test

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/rebound-queue/rebound/storable"
)

type statusError struct{ msg string }

func (e *statusError) Error() string   { return e.msg }
func (e *statusError) StatusCode() int { return 503 }

func TestError(t *testing.T) {
	t.Parallel()
	t.Run("nil", func(t *testing.T) {
		t.Parallel()
		require.NoError(t, storable.Error(nil))
	})
	t.Run("a storable error is returned as it is", func(t *testing.T) {
		t.Parallel()
		err := fmt.Errorf("upstream: %w", fs.ErrNotExist)
		require.Same(t, err, storable.Error(err))
	})
	t.Run("unstorable text is wrapped; the original stays reachable", func(t *testing.T) {
		t.Parallel()
		orig := &statusError{msg: "bad\x00byte \xff\xfe here"}
		err := storable.Error(fmt.Errorf("call: %w (%w)", orig, context.Canceled))
		require.EqualError(t, err, "call: bad\uFFFDbyte \uFFFD\uFFFD here (context canceled)")
		got, ok := errors.AsType[*statusError](err)
		require.True(t, ok)
		require.Same(t, orig, got)
		require.ErrorIs(t, err, context.Canceled)
		s, ok := errors.AsType[*storable.SanitizedError](err)
		require.True(t, ok)
		require.Equal(t, "call: bad\x00byte \xff\xfe here (context canceled)", s.Err.Error())
	})
	t.Run("a long message is bounded", func(t *testing.T) {
		t.Parallel()
		err := storable.Error(errors.New(strings.Repeat("x", 10_000)))
		require.Len(t, err.Error(), storable.MaxErrorBytes)
		require.True(t, strings.HasSuffix(err.Error(), "…"))
	})
}

func TestPanic(t *testing.T) {
	t.Parallel()
	t.Run("a storable value is returned as it is", func(t *testing.T) {
		t.Parallel()
		require.Equal(t, "boom", storable.Panic("boom"))
		err := errors.New("boom")
		require.Same(t, err, storable.Panic(err))
	})
	t.Run("a string value", func(t *testing.T) {
		t.Parallel()
		v := storable.Panic("boom \x00\xff")
		p, ok := v.(*storable.PanicValue)
		require.True(t, ok)
		require.Equal(t, "boom \x00\xff", p.Value)
		require.Equal(t, "boom \uFFFD\uFFFD", fmt.Sprintf("%v", v)) // what River stores
		require.Equal(t, "boom \uFFFD\uFFFD", fmt.Sprint(v))
		require.NoError(t, p.Unwrap())
	})
	t.Run("an error value stays reachable", func(t *testing.T) {
		t.Parallel()
		orig := &statusError{msg: "boom \x00"}
		v := storable.Panic(orig)
		require.Equal(t, "boom \uFFFD", fmt.Sprintf("%v", v))
		err, ok := v.(error)
		require.True(t, ok)
		got, ok := errors.AsType[*statusError](err)
		require.True(t, ok)
		require.Same(t, orig, got)
	})
	t.Run("a long value is bounded", func(t *testing.T) {
		t.Parallel()
		require.Len(t, fmt.Sprint(storable.Panic(strings.Repeat("p", 5000))), storable.MaxErrorBytes)
	})
}
