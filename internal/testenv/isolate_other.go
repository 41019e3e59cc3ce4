//go:build !linux

package testenv

import "os/exec"

// isolateNetwork reports that network namespaces are not available here.
func isolateNetwork(*exec.Cmd) bool { return false }

func dieWithParent(*exec.Cmd) {}
