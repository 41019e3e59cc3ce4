package testenv

import (
	"os"
	"os/exec"
	"syscall"
)

// isolateNetwork makes cmd start in a network namespace of its own, where
// only a loopback interface exists (and is down): nothing it listens on is
// reachable from, or collides with, the host's network, and it can reach no
// network at all. Reach it through a Unix socket. Unprivileged users get a
// user namespace too, mapping them to root in it, as `unshare -rn` does.
// Starting cmd fails if the kernel refuses new namespaces.
func isolateNetwork(cmd *exec.Cmd) bool {
	attr := sysProcAttr(cmd)
	attr.Cloneflags |= syscall.CLONE_NEWNET
	if os.Geteuid() != 0 {
		attr.Cloneflags |= syscall.CLONE_NEWUSER
		attr.UidMappings = []syscall.SysProcIDMap{{ContainerID: 0, HostID: os.Geteuid(), Size: 1}}
		attr.GidMappings = []syscall.SysProcIDMap{{ContainerID: 0, HostID: os.Getegid(), Size: 1}}
	}
	return true
}

// dieWithParent kills cmd when the test binary dies, so that a crashed or
// killed test leaves no server behind.
func dieWithParent(cmd *exec.Cmd) {
	sysProcAttr(cmd).Pdeathsig = syscall.SIGKILL
}

func sysProcAttr(cmd *exec.Cmd) *syscall.SysProcAttr {
	if cmd.SysProcAttr == nil {
		cmd.SysProcAttr = &syscall.SysProcAttr{}
	}
	return cmd.SysProcAttr
}
