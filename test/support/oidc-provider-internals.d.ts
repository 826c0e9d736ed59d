// oidc-provider has no public way to wrap a built-in grant handler, and the test
// provider needs to pre-process refresh_token grants (Logto's organization_id).
// The package has no "exports" map, so this internal module is importable; these
// are the only members the test provider touches.
declare module 'oidc-provider/lib/helpers/weak_cache.js' {
  interface ProviderInternals {
    grantTypeHandlers: Map<string, (ctx: unknown) => Promise<void>>;
  }
  export default function instance(provider: object): ProviderInternals;
}
