package retrypolicy_test

import (
	"fmt"

	"gopkg.in/yaml.v3"

	"github.com/rebound-queue/rebound/retrypolicy"
)

func ExampleConfig() {
	// The retry section of the worker's --config file.
	var file struct {
		Retry retrypolicy.Config `yaml:"retry"`
	}
	err := yaml.Unmarshal([]byte(`
retry:
  default:
    max_attempts: 5
    initial_delay: 2s
    max_delay: 5m
  kinds:
    http_request:
      max_attempts: 10
      jitter: none
      classes:
        not_found: {retry: true, strategy: linear}
`), &file)
	if err != nil {
		fmt.Println(err)
		return
	}
	policies, err := file.Retry.Policies()
	if err != nil {
		fmt.Println(err)
		return
	}
	p := policies.Lookup("http_request")
	fmt.Println(p.MaxAttempts, p.InitialDelay, p.MaxDelay, p.Jitter, p.Rule(retrypolicy.ClassNotFound))
	fmt.Println(policies.Lookup("weekly_intelligence").MaxAttempts)

	// Invalid settings are refused, naming the key.
	_ = yaml.Unmarshal([]byte("retry:\n  kinds:\n    http_request: {max_delay: 1s}\n"), &file)
	_, err = file.Retry.Policies()
	fmt.Println(err)
	// Output:
	// 10 2s 5m0s none {true linear}
	// 5
	// retry.kinds.http_request.max_delay: must be >= initial_delay (2s)
}
