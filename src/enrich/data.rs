//! The `data` purpose: MaxMind data (`infos_byip`) for addresses.

use super::context::Context;
use crate::stix::objects;
use serde_json::{Map, Value};

/// Locations (`located-at`) and AS (`belongs-to`) of an address from its `infos_byip`.
pub fn add(ctx: &mut Context<'_>, infos: &Map<String, Value>) {
    if ctx.observable.ip().is_none() {
        return;
    }
    let text = |k: &str| infos.get(k).and_then(Value::as_str).map(str::to_owned);
    let address_id = ctx.observable_id.clone();
    let country_name = text("country_name");
    if let Some(country_name) = &country_name {
        let country_code = text("country_code");
        let country_id = ctx
            .builder
            .add(objects::country(country_name, country_code.as_deref()));
        let location_id = match text("city") {
            Some(city) => {
                let city_id =
                    ctx.builder
                        .add(objects::city(&city, country_code.as_deref(), country_name));
                ctx.builder
                    .relate("located-at", &city_id, &country_id, None);
                city_id
            }
            None => country_id,
        };
        ctx.builder
            .relate("located-at", &address_id, &location_id, None);
    }
    if let Some(registered) = text("registered_country_name") {
        if Some(&registered) != country_name.as_ref() {
            let code = text("registered_country_code");
            let id = ctx
                .builder
                .add(objects::country(&registered, code.as_deref()));
            ctx.builder.relate("located-at", &address_id, &id, None);
        }
    }
    if let Some(number) = infos
        .get("as_num")
        .and_then(Value::as_u64)
        .and_then(|n| u32::try_from(n).ok())
    {
        let as_id = ctx.add_asn(number, text("as_name").as_deref());
        ctx.builder.relate("belongs-to", &address_id, &as_id, None);
    }
}
