// +k8s:deepcopy-gen=package
// +groupName=core.calyptia.com

// Package core holds the internal (hub) version of the core.calyptia.com API. Every served
// version converts to and from these types; validation and the registry work on them.
package core
