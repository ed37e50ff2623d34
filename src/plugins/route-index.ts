export type RouteEntry = { readonly method: string; readonly path: string; readonly hooks: unknown };

/**
 * What `pick` finds on each route, by method and path template, rebuilt whenever routes were
 * added since: for hooks that look up their route's schema on every request.
 */
export function routeIndex<T>(
  routes: () => readonly RouteEntry[],
  pick: (route: RouteEntry) => T | undefined,
): (method: string, path: string) => T | undefined {
  let index: { size: number; byKey: Map<string, T> } | undefined;
  return (method, path) => {
    const all = routes();
    if (index?.size !== all.length) {
      const byKey = new Map<string, T>();
      for (const route of all) {
        const found = pick(route);
        if (found !== undefined) byKey.set(`${route.method} ${route.path}`, found);
      }
      index = { size: all.length, byKey };
    }
    return index.byKey.get(`${method} ${path}`);
  };
}
