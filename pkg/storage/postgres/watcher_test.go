package postgres

import (
	"context"
	"errors"
	"testing"

	"k8s.io/apiserver/pkg/features"
	storagetesting "k8s.io/apiserver/pkg/storage/testing"
	utilfeature "k8s.io/apiserver/pkg/util/feature"
	featuregatetesting "k8s.io/component-base/featuregate/testing"
)

// The upstream watch conformance suite, as etcd3/watcher_test.go runs it.
func TestWatch(t *testing.T) {
	t.Run("Watch", func(t *testing.T) {
		ctx, s, _ := testSetup(t)
		storagetesting.RunTestWatch(ctx, t, s)
	})
	t.Run("ClusterScopedWatch", func(t *testing.T) {
		ctx, s, _ := testSetup(t)
		storagetesting.RunTestClusterScopedWatch(ctx, t, s)
	})
	t.Run("NamespaceScopedWatch", func(t *testing.T) {
		ctx, s, _ := testSetup(t)
		storagetesting.RunTestNamespaceScopedWatch(ctx, t, s)
	})
	t.Run("DeleteTriggerWatch", func(t *testing.T) {
		ctx, s, _ := testSetup(t)
		storagetesting.RunTestDeleteTriggerWatch(ctx, t, s)
	})
	t.Run("WatchFromZero", func(t *testing.T) {
		ctx, s, b := testSetup(t)
		storagetesting.RunTestWatchFromZero(ctx, t, s, compaction(b))
	})
	t.Run("WatchFromNonZero", func(t *testing.T) {
		ctx, s, _ := testSetup(t)
		storagetesting.RunTestWatchFromNonZero(ctx, t, s)
	})
	t.Run("DelayedWatchDelivery", func(t *testing.T) {
		ctx, s, _ := testSetup(t)
		storagetesting.RunTestDelayedWatchDelivery(ctx, t, s)
	})
	t.Run("WatchError", func(t *testing.T) {
		ctx, s, _ := testSetup(t)
		storagetesting.RunTestWatchError(ctx, t, &storeWithPrefixTransformer{s})
	})
	t.Run("WatchContextCancel", func(t *testing.T) {
		ctx, s, _ := testSetup(t)
		storagetesting.RunTestWatchContextCancel(ctx, t, s)
	})
	t.Run("WatcherTimeout", func(t *testing.T) {
		ctx, s, _ := testSetup(t)
		storagetesting.RunTestWatcherTimeout(ctx, t, s)
	})
	t.Run("WatchDeleteEventObjectHaveLatestRV", func(t *testing.T) {
		ctx, s, _ := testSetup(t)
		storagetesting.RunTestWatchDeleteEventObjectHaveLatestRV(ctx, t, s)
	})
	t.Run("WatchInitializationSignal", func(t *testing.T) {
		ctx, s, _ := testSetup(t)
		storagetesting.RunTestWatchInitializationSignal(ctx, t, s)
	})
	t.Run("ProgressNotify", func(t *testing.T) {
		ctx, s, b := testSetup(t)
		storagetesting.RunOptionalTestProgressNotify(ctx, t, s, increaseRV(b))
	})
	t.Run("WatchDispatchBookmarkEvents", func(t *testing.T) {
		ctx, s, _ := testSetup(t)
		storagetesting.RunTestWatchDispatchBookmarkEvents(ctx, t, s, false)
	})
	t.Run("SendInitialEventsBackwardCompatibility", func(t *testing.T) {
		ctx, s, _ := testSetup(t)
		storagetesting.RunSendInitialEventsBackwardCompatibility(ctx, t, s)
	})
	t.Run("WatchSemantics", func(t *testing.T) {
		_, s, _ := testSetup(t)
		storagetesting.RunWatchSemantics(context.TODO(), t, s)
	})
	t.Run("WatchSemanticInitialEventsExtended", func(t *testing.T) {
		_, s, _ := testSetup(t)
		storagetesting.RunWatchSemanticInitialEventsExtended(context.TODO(), t, s)
	})
	t.Run("WatchListMatchSingle", func(t *testing.T) {
		_, s, _ := testSetup(t)
		storagetesting.RunWatchListMatchSingle(context.TODO(), t, s)
	})
	t.Run("WatchErrorIsBlockingFurtherEvents", func(t *testing.T) {
		ctx, s, _ := testSetup(t)
		storagetesting.RunWatchErrorIsBlockingFurtherEvents(ctx, t, &storeWithPrefixTransformer{s})
	})
}

func TestWatchWithUnsafeDelete(t *testing.T) {
	featuregatetesting.SetFeatureGateDuringTest(t, utilfeature.DefaultFeatureGate, features.AllowUnsafeMalformedObjectDeletion, true)
	ctx, s, _ := testSetup(t)
	storagetesting.RunTestWatchWithUnsafeDelete(ctx, t, &storeWithTransformerOverride{Interface: s, store: s}, &corruptObjectError{err: errors.New("bits flipped"), errType: untransformable})
}
