//! What the public events need to know besides a stored event, answered
//! from the read models: facts that never change once recorded.

use super::store::ReadModels;
use crate::feed::Facts;

impl Facts for ReadModels {
    fn customer_of_contact(&self, tenant: &str, contact_id: &str) -> Option<String> {
        let tables = self.read();
        let (_, row) = tables.contact(tenant, contact_id)?;
        Some(tables.ids.name(row.customer).to_owned())
    }

    fn customer_of_link(&self, tenant: &str, link_id: &str) -> Option<String> {
        let tables = self.read();
        let token = tables.tenant(tenant)?.portal_link_ids.get(link_id)?;
        let link = tables.globals(token).portal_links.get(token)?;
        Some(link.customer_id.clone())
    }

    fn contact_of_invitation(&self, tenant: &str, invitation_id: &str) -> Option<String> {
        let tables = self.read();
        let invitation = tables.ids.find(invitation_id)?;
        let contact = tables.tenant(tenant)?.invitations.get(&invitation)?;
        Some(tables.ids.name(*contact).to_owned())
    }
}
