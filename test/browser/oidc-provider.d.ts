// oidc-provider (a devDependency, used by the SSO browser test) ships no types; the test uses
// its constructor and callback() only.
declare module 'oidc-provider' {
  import type { RequestListener } from 'node:http';

  export default class Provider {
    constructor(issuer: string, configuration: Record<string, unknown>);
    callback(): RequestListener;
  }
}
