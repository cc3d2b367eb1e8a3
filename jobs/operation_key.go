package jobs

import "encoding/json"

// OperationKeyer is implemented by job args that name their own operation
// key: the circuit breaker their job shares with other jobs calling the same
// downstream. It runs when the job is inserted (the insert middleware
// stamps the result into the job's metadata, where the breaker gate and the
// dead-letter capture read it), so it may look at every field; it must not
// fail: "" means "no opinion", and the next rule applies (for rebound's
// producers: the kind's name).
//
// [HTTPRequestArgs] implements it: operation_key when given, else the URL's
// host.
type OperationKeyer interface {
	OperationKey() string
}

// ArgsOperationKey decodes encodedArgs (a job's args JSON) into a T and
// returns its OperationKey, or "" when they do not decode. It gives jobs
// inserted without their key stamped (by a producer that is not rebound's)
// the key their args say, at the cost of decoding the args.
func ArgsOperationKey[T OperationKeyer](encodedArgs []byte) string {
	var args T
	if err := json.Unmarshal(encodedArgs, &args); err != nil {
		return ""
	}
	return args.OperationKey()
}
